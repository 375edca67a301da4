"""The web UI's server: two pages, a JSON API over the store, live updates by server-sent
events, and the cancel and redispatch actions.

    GET  /                                   the dispatches page
    GET  /dispatches/{id}                    a dispatch's graph page
    GET  /api/session                        the CSRF token for this page's POSTs
    GET  /api/dispatches?status=&name=&q=    dispatches, newest first, with progress
    GET  /api/dispatches/{id}                the dispatch and its graph
    GET  /api/dispatches/{id}/events         server-sent events: what changed, as it changes
    GET  /api/dispatches/{id}/nodes/{n}      a node's details, output and logs so far
    GET  /api/dispatches/{id}/nodes/{n}/cancel-preview   what cancelling it would cancel
    POST /api/dispatches/{id}/cancel         {"task_ids": [n]} or {} for the whole dispatch
    POST /api/dispatches/{id}/redispatch     {"reuse": true}: the new dispatch's id

Everything reads the same store as the CLI (any process's dispatches); the dispatcher service
is asked only through the public API (cancel, redispatch) and for a running task's output
(``NodeResult.stdout``), so the UI keeps working while services come and go.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import CovalentCoreError, DispatchNotFoundError
from ..status import TERMINAL, Status
from ..store import open_store
from ..store import queries as q
from . import data
from .security import TokenGuard, csrf_token

STATIC = Path(__file__).with_name("static")
EVENT_INTERVAL = 0.5
"""Seconds between two looks at the store for a page's live updates."""
KEEPALIVE = 15.0

T = TypeVar("T")


async def _read(fn: Callable[[Any], T]) -> T:
    """``fn(connection)`` on a read connection of the store, in a thread."""

    def run() -> T:
        with open_store().read() as conn:
            return fn(conn)

    return await asyncio.to_thread(run)


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _dispatch_id(request: Request) -> str:
    """The path's dispatch id (a unique prefix of 6 characters or more is completed)."""
    text = request.path_params["dispatch_id"]
    return await _read(lambda conn: q.complete_dispatch_id(conn, text))


def _node_id(request: Request) -> int:
    return int(request.path_params["node_id"])


async def page(request: Request) -> Response:
    name = "dispatch.html" if "dispatch_id" in request.path_params else "index.html"
    return FileResponse(STATIC / name)


async def session(request: Request) -> Response:
    return JSONResponse({"csrf": request.app.state.csrf})


async def dispatches(request: Request) -> Response:
    params = request.query_params
    statuses = [s for s in params.get("status", "").split(",") if s] or None
    try:
        for s in statuses or ():
            Status(s)
        limit = min(1000, int(params.get("limit", "100")))
    except ValueError as exc:
        return _error(f"bad filter: {exc}", 400)
    rows = await _read(
        lambda conn: data.dispatch_list(
            conn,
            statuses=statuses,
            name=params.get("name") or None,
            prefix=params.get("q") or None,
            limit=limit,
        )
    )
    return JSONResponse(rows)


async def dispatch(request: Request) -> Response:
    dispatch_id = await _dispatch_id(request)
    return JSONResponse(await _read(lambda conn: data.dispatch_graph(conn, dispatch_id)))


async def events(request: Request) -> Response:
    """Server-sent events: ``nodes`` (the nodes whose state changed) and ``dispatch`` (its
    status), sent only when something changed; first the full state, to start from."""
    dispatch_id = await _dispatch_id(request)

    def snapshot(
        conn: Any, last: dict[int, dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
        row = q.get_dispatch(conn, dispatch_id)
        if last and _settled(row.status, last):  # nothing more can change: nodes not read
            return data.dispatch_state(row), last
        return data.dispatch_state(row), data.node_states(conn, dispatch_id)

    async def stream() -> AsyncIterator[str]:
        last_dispatch: dict[str, Any] = {}
        last_nodes: dict[int, dict[str, Any]] = {}
        quiet_since = time.monotonic()
        while not await request.is_disconnected():
            state, nodes = await _read(functools.partial(snapshot, last=last_nodes))
            changed = [n for i, n in nodes.items() if last_nodes.get(i) != n]
            if changed:
                yield f"event: nodes\ndata: {json.dumps(changed)}\n\n"
            if state != last_dispatch:
                yield f"event: dispatch\ndata: {json.dumps(state)}\n\n"
            if changed or state != last_dispatch:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > KEEPALIVE:
                yield ": keepalive\n\n"
                quiet_since = time.monotonic()
            last_dispatch, last_nodes = state, nodes
            await asyncio.sleep(EVENT_INTERVAL)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
    )


def _settled(status: str, nodes: dict[int, dict[str, Any]]) -> bool:
    """True once the dispatch and every node of it have ended."""
    ended = {s.value for s in TERMINAL}
    return status in ended and all(n["status"] in ended for n in nodes.values())


async def node(request: Request) -> Response:
    dispatch_id, node_id = await _dispatch_id(request), _node_id(request)
    return JSONResponse(await _read(lambda conn: data.node_detail(conn, dispatch_id, node_id)))


async def cancel_preview(request: Request) -> Response:
    dispatch_id, node_id = await _dispatch_id(request), _node_id(request)
    preview = await _read(lambda conn: data.cancel_preview(conn, dispatch_id, node_id))
    return JSONResponse(preview)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = {}
    return body if isinstance(body, dict) else {}


async def cancel(request: Request) -> Response:
    from ..api import cancel as cancel_tasks

    dispatch_id = await _dispatch_id(request)
    task_ids = (await _body(request)).get("task_ids")
    if task_ids is not None and (
        not isinstance(task_ids, list) or not all(isinstance(i, int) for i in task_ids)
    ):
        return _error("task_ids must be a list of node ids", 400)
    report = await asyncio.to_thread(cancel_tasks, dispatch_id, task_ids)
    return JSONResponse(report.to_json())


async def redispatch(request: Request) -> Response:
    from ..redispatching import redispatch as again

    dispatch_id = await _dispatch_id(request)
    reuse = bool((await _body(request)).get("reuse", True))
    new_id = await asyncio.to_thread(lambda: again(dispatch_id, reuse_previous_results=reuse)())
    return JSONResponse({"dispatch_id": new_id})


async def not_found(request: Request, exc: Exception) -> Response:
    if isinstance(exc, DispatchNotFoundError):
        return _error(str(exc), 404)
    if isinstance(exc, LookupError):
        return _error(str(exc.args[0] if exc.args else exc), 404)
    if isinstance(exc, ValueError):
        return _error(str(exc), 400)
    return _error(f"{type(exc).__name__}: {exc}", 400)


def create_app(token: str) -> Any:
    """The UI as an ASGI application, guarded by ``token``."""
    app = Starlette(
        routes=[
            Route("/", page),
            Route("/dispatches/{dispatch_id}", page),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route("/api/session", session),
            Route("/api/dispatches", dispatches),
            Route("/api/dispatches/{dispatch_id}", dispatch),
            Route("/api/dispatches/{dispatch_id}/events", events),
            Route("/api/dispatches/{dispatch_id}/nodes/{node_id:int}", node),
            Route(
                "/api/dispatches/{dispatch_id}/nodes/{node_id:int}/cancel-preview",
                cancel_preview,
            ),
            Route("/api/dispatches/{dispatch_id}/cancel", cancel, methods=["POST"]),
            Route("/api/dispatches/{dispatch_id}/redispatch", redispatch, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={
            CovalentCoreError: not_found,
            LookupError: not_found,
            ValueError: not_found,
            TypeError: not_found,
        },
    )
    app.state.csrf = csrf_token(token)
    return TokenGuard(app, token)
