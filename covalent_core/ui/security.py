"""The UI's access rules: a token for every request, CSRF protection for every change.

As Jupyter does, the server makes a random token and prints a URL carrying it. The first
visit with ``?token=`` sets an HttpOnly, SameSite=Strict cookie and redirects to the same
page without the token (so it stays out of the history and of Referer headers); later
requests carry the cookie (or ``Authorization: Bearer TOKEN``). Anything else gets 401.

A request that changes something is a POST with the header ``X-CSRF-Token`` (a value derived
from the token, handed to the page by ``GET /api/session``, which another site cannot read),
from a page of this origin (``Origin`` checked when the browser sends one): another site's
form or script is refused with 403, even though the browser would attach the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "covalent_core_ui"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEADERS = {
    # Scripts and styles of this server only: a value that slipped into the page is inert.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def new_token() -> str:
    """A random access token (256 bits)."""
    return secrets.token_urlsafe(32)


def csrf_token(token: str) -> str:
    """The CSRF value of a session: derived from its token, useless without it."""
    return hmac.new(token.encode(), b"covalent-core-ui csrf", hashlib.sha256).hexdigest()


class TokenGuard:
    """ASGI middleware: the token for every request, CSRF checks for every POST."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token
        self.csrf = csrf_token(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self.check(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                for name, value in HEADERS.items():
                    headers.append((name.lower().encode(), value.encode()))
            await send(message)

        await self.app(scope, receive, with_headers)

    def _matches(self, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(str(value), self.token)

    def check(self, request: Request) -> Response | None:
        """None if the request may go on; else the refusal to send."""
        given = request.query_params.get("token")
        if request.method in SAFE_METHODS and given is not None and self._matches(given):
            # First visit: keep the token in a cookie, drop it from the address.
            rest = {k: v for k, v in request.query_params.items() if k != "token"}
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
            return response
        bearer = request.headers.get("authorization", "")
        authorized = self._matches(request.cookies.get(COOKIE)) or (
            bearer.startswith("Bearer ") and self._matches(bearer[7:])
        )
        if not authorized:
            return JSONResponse(
                {
                    "error": "missing or wrong token: open the URL that `covalent-core ui` "
                    "printed (it carries ?token=...)"
                },
                status_code=401,
            )
        if request.method in SAFE_METHODS:
            return None
        origin = request.headers.get("origin")
        if origin is not None and not _same_origin(origin, request):
            return JSONResponse({"error": f"cross-site request from {origin} refused"}, 403)
        if not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), self.csrf):
            return JSONResponse(
                {"error": "missing or wrong X-CSRF-Token header (GET /api/session gives it)"},
                status_code=403,
            )
        return None


def _same_origin(origin: str, request: Request) -> bool:
    parts = urlsplit(origin)
    return parts.scheme == request.url.scheme and parts.netloc == request.headers.get("host")
