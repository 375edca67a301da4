"""Starting the UI: a uvicorn server on loopback (unless told otherwise), its URL with the
access token printed, the browser opened on request."""

from __future__ import annotations

import ipaddress
import socket
import webbrowser
from collections.abc import Callable

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, token: str) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


def serve(
    host: str = LOOPBACK,
    port: int = 0,
    *,
    open_browser: bool = False,
    token: str | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the UI until interrupted. ``announce`` is given the URL (with the token) and,
    for an address beyond this machine, a warning first."""
    import uvicorn

    from .app import create_app
    from .security import new_token

    token = token or new_token()
    if not is_loopback(host):
        announce(
            f"warning: serving on {host}, reachable from other machines; anyone with the "
            "URL's token can see your dispatches and cancel them. Prefer the default "
            "(127.0.0.1) with an SSH tunnel."
        )
    sock = listen(host, port)
    url = url_of(sock, token)
    announce(f"covalent-core UI: {url}")
    if open_browser:
        webbrowser.open(url)
    config = uvicorn.Config(create_app(token), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
