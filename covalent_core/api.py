"""The public functions: ``dispatch``, ``dispatch_sync``, ``get_result``, ``cancel``,
``list_dispatches`` (``redispatch``: :mod:`covalent_core.redispatching`)."""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Iterable
from typing import Any

from . import config, submission
from ._results_manager.result import (
    CancelReport,
    DispatchList,
    DispatchSummary,
    NodeResult,
    Result,
)
from ._workflow import Lattice
from .cancel_requests import request_cancel, task_id_list
from .deadlines import deadline_at
from .errors import (
    DispatchTimeoutError,
    ServiceError,
    StoreFullError,
    store_full_message,
)
from .graph import KIND_POSTPROCESS, Edge
from .progress import progress_bar
from .service import client as service
from .status import Status
from .store import open_store
from .store import queries as q
from .submission import MAX_KEY

POLL_START = 0.02
POLL_MAX = 0.5
# How often a waiting client checks that a service is still running the dispatch.
REVIVE_EVERY = 2.0
# A waiting client re-reads the store and asks the service again at least this often.
WATCH_MAX = 60.0


def dispatch(
    lattice: Lattice,
    dispatcher_addr: str | None = None,
    *,
    key: str | None = None,
    disable_run: bool = False,
    deadline: Any = None,
) -> Callable[..., str]:
    """Return a function that dispatches ``lattice`` with the given arguments and returns its id.

    The workflow's graph is built and stored at once; the dispatch runs in the local
    dispatcher service (started if needed) and keeps running after this process exits. The
    call is exactly once: it returns the id of a dispatch that will run, or raises having
    stored nothing. ``key`` (an idempotency key of the caller's) makes a retry safe: a
    dispatch with a key already stored returns that dispatch's id and stores nothing new.
    ``dispatcher_addr`` (Covalent's server address) is accepted and unused.

    As in Covalent, ``disable_run`` registers the dispatch without running it (it stays
    NEW_OBJECT until :func:`covalent_core.triggers.start`), and so does a lattice with triggers
    (:mod:`covalent_core.triggers`): they are stored with it and its first firing starts it.

    ``deadline`` (ours: ``"2h"``, ``"30m"``, seconds, a ``timedelta`` or a ``datetime``; by
    default the lattice's ``deadline``): when it passes, the service cancels every unfinished
    task with the reason ``deadline`` and the dispatch ends CANCELLED; what finished is kept
    (a redispatch with reuse goes on from it).
    """
    if not isinstance(lattice, Lattice):
        raise TypeError(f"dispatch() takes a @lattice, not {type(lattice).__name__}")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= MAX_KEY):
        raise TypeError(f"dispatch()'s key is a string of 1 to {MAX_KEY} characters, not {key!r}")
    deadline_at(deadline, time.time())  # a mistake is said now, before any argument is built

    triggers = list(lattice.metadata.get("triggers") or ())
    if triggers:  # stored as triggers; the stored workflow has none (its reruns register none)
        lattice = copy.copy(lattice)
        lattice.metadata = {**lattice.metadata, "triggers": None}

    @functools.wraps(lattice.function)
    def dispatch_with(*args: Any, **kwargs: Any) -> str:
        held = disable_run or bool(triggers)
        return submission.submit(
            lattice, args, kwargs, key=key, held=held, triggers=triggers, deadline=deadline
        )

    return dispatch_with


def dispatch_sync(lattice: Lattice, timeout: float | None = None) -> Callable[..., Result]:
    """Like :func:`dispatch`, but wait for the dispatch to finish and return its :class:`Result`."""
    submit = dispatch(lattice)

    @functools.wraps(lattice.function)
    def run(*args: Any, **kwargs: Any) -> Result:
        return get_result(submit(*args, **kwargs), wait=True, timeout=timeout)

    return run


def _status(dispatch_id: str) -> Status:
    store = open_store()
    with store.read() as conn:
        return Status(q.get_dispatch(conn, dispatch_id).status)


def get_result(
    dispatch_id: str,
    wait: bool = False,
    timeout: float | None = None,
    *,
    status_only: bool = False,
    workflow_output: bool = True,
    intermediate_outputs: bool = True,
    sublattice_results: bool = True,
    results_dir: str | None = None,
    dispatcher_addr: str | None = None,
    progress: bool | None = None,
) -> Any:
    """Read a dispatch and all its nodes; with ``wait=True``, first wait until it finished,
    showing a progress bar of tasks done in a terminal or a notebook (``progress=False``:
    never; ``True``: always; default: only there).

    Covalent's options: ``status_only`` returns ``{"id": ..., "status": ...}`` only;
    ``workflow_output=False`` leaves ``result.result`` None; ``intermediate_outputs=False``
    leaves node outputs unread; ``sublattice_results=False`` leaves each sublattice node's
    ``sublattice_result`` None. ``results_dir`` and ``dispatcher_addr`` are accepted and
    unused: results live in the store (``COVALENT_CORE_DB_URL``).

    If the dispatch is unfinished and the service that ran it is gone (killed, its machine
    restarted), a new service is started: it re-attaches to the dispatch's running jobs.

    Raises :class:`DispatchNotFoundError` for an unknown id and :class:`DispatchTimeoutError`
    when ``timeout`` seconds pass first (the dispatch keeps running).
    """
    service.revive(dispatch_id)
    if wait:
        with progress_bar(dispatch_id, progress):
            _wait_until_ended(dispatch_id, timeout)
    store = open_store()
    if status_only:
        return {"id": dispatch_id, "status": str(_status(dispatch_id))}
    with store.read() as conn:
        row = q.get_dispatch(conn, dispatch_id, with_result=True)
        node_rows = q.get_nodes(conn, dispatch_id, outputs=True)
        edge_rows = q.get_edges(conn, dispatch_id)
    nodes = [NodeResult.from_row(r) for r in node_rows]
    if not intermediate_outputs:
        for node in nodes:
            if node.kind != KIND_POSTPROCESS:
                node.output_bytes = None
    return Result(
        dispatch_id=row.dispatch_id,
        name=row.name,
        status=Status(row.status),
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        error=row.error,
        nodes=nodes,
        parent_dispatch_id=row.parent_dispatch_id,
        root_dispatch_id=row.root_dispatch_id,
        edges=[Edge(*e) for e in edge_rows],  # rows hold Edge's fields in its order
        lattice_bytes=row.lattice,
        inputs_bytes=row.inputs,
        results_dir=str(config.data_dir()),
        redispatched_from=row.redispatched_from,
        triggered_by=row.triggered_by,
        deadline_at=row.deadline_at,
        _loader=functools.partial(get_result, workflow_output=workflow_output),
        _with_sublattices=sublattice_results,
        _with_output=workflow_output,
    )


def cancel(
    dispatch_id: str,
    task_ids: int | Iterable[int] | None = None,
    *,
    wait: bool = False,
    timeout: float | None = None,
) -> CancelReport:
    """Cancel a whole dispatch, or the given tasks and everything downstream of them.

    The request is stored durably and the dispatcher is woken at once: tasks not yet started
    never start, running ones are stopped on their resource. Finished tasks keep their
    results. With ``wait=True`` this returns once every cancelled task is CANCELLED (or
    ``timeout`` passed). Cancelling again, or cancelling what already finished, changes nothing.
    """
    ids = None if task_ids is None else task_id_list(task_ids)
    report = _cancel_by_service(dispatch_id, ids)
    if report is None:  # no service runs, or it refused (the same request here says why)
        report = request_cancel(dispatch_id, ids)
        if report.changed_anything:
            # A service started for it (asked the same: stored, it changes nothing more)
            # applies what is stored.
            service.request({"op": "cancel", "dispatch_id": dispatch_id, "task_ids": ids})
    if wait and report.changed_anything:
        _wait_cancelled(dispatch_id, report.cancelled, timeout)
    return report


def _cancel_by_service(dispatch_id: str, task_ids: list[int] | None) -> CancelReport | None:
    """Have the running service store the request and act on it in one round trip; None if
    no service answers or it could not (the caller then does it here, with the same checks)."""
    if not isinstance(dispatch_id, str) or len(dispatch_id) > q.MAX_DISPATCH_ID:
        return None
    try:
        reply = service.request(
            {"op": "cancel", "dispatch_id": dispatch_id, "task_ids": task_ids},
            start=False,
            raw=True,
        )
    except (ServiceError, OSError):
        return None
    if not reply.get("ok"):
        return None
    return CancelReport.from_json(reply["report"])


def _wait_cancelled(dispatch_id: str, node_ids: list[int], timeout: float | None) -> None:
    store = open_store()
    wanted = set(node_ids)

    def pending() -> list[int] | None:
        with store.read() as conn:
            rows = q.get_nodes(conn, dispatch_id)
        still = [
            r.node_id for r in rows if r.node_id in wanted and r.status not in q.TERMINAL_VALUES
        ]
        return still or None

    def timed_out(still: list[int]) -> DispatchTimeoutError:
        return DispatchTimeoutError(
            f"tasks {still} of dispatch {dispatch_id} were not confirmed cancelled within "
            f"{timeout:g} s; they stay CANCELLING while the dispatcher retries (see "
            f"`covalent-core status {dispatch_id}`)"
        )

    message = {"op": "wait_nodes", "dispatch_id": dispatch_id, "node_ids": sorted(wanted)}
    _wait(pending, message, timeout, timed_out)


def _wait_until_ended(dispatch_id: str, timeout: float | None) -> None:
    def unfinished() -> Status | None:
        status = _status(dispatch_id)
        return None if status.is_terminal else status

    def timed_out(status: Status) -> DispatchTimeoutError:
        return DispatchTimeoutError(
            f"dispatch {dispatch_id} did not finish within {timeout:g} s; it is still "
            f"{status}. Wait longer, or cancel it with ct.cancel({dispatch_id!r}) "
            f"(`covalent-core cancel {dispatch_id}`); follow it with `covalent-core watch "
            f"{dispatch_id}`."
        )

    def revive_and_read() -> Status | None:
        service.revive(dispatch_id)  # a service that died while we waited is replaced
        return unfinished()

    _wait(
        unfinished,
        {"op": "wait_dispatch", "dispatch_id": dispatch_id},
        timeout,
        timed_out,
        revive_and_read,
    )


def _wait(
    unfinished: Callable[[], Any],
    message: dict[str, Any],
    timeout: float | None,
    timed_out: Callable[[Any], Exception],
    revive: Callable[[], Any] | None = None,
) -> None:
    """Wait until ``unfinished()`` (a read of the store) returns None.

    The service answers ``message`` the moment the end is stored (so its answer is not read
    back: a read costs as much as the rest of the wait); without a service that
    runs the dispatch (it died, or another host's runs it), the store is read every
    ``POLL_START`` growing to ``POLL_MAX`` seconds, and the service asked again every
    ``REVIVE_EVERY`` seconds.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = POLL_START
    last_watch = float("-inf")
    while (state := unfinished()) is not None:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise timed_out(state)
        if now - last_watch >= REVIVE_EVERY:
            if last_watch > float("-inf") and revive is not None and revive() is None:
                return  # the first time, the caller has just revived
            last_watch = now
            remaining = WATCH_MAX
            if deadline is not None:
                remaining = min(remaining, max(0.0, deadline - time.monotonic()))
            answer = service.watch(message, remaining)
            if answer is not None and answer.get("watching"):
                return  # it ended, and the service answers only once the store says so
            if answer is not None and answer.get("store_full"):
                raise StoreFullError(store_full_message(str(answer["store_full"])))
        pause = delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic()))
        time.sleep(pause)
        delay = min(delay * 1.5, POLL_MAX)


def list_dispatches(
    limit: int = 50,
    *,
    status: Iterable[Status | str] | None = None,
    name: str | None = None,
    since: float | None = None,
) -> DispatchList:
    """Recent top-level dispatches, newest first (starting a service for orphaned ones):
    those with one of the statuses ``status``, whose name contains ``name``, created at or
    after ``since`` (seconds since the epoch). A notebook shows them as a table."""
    service.revive()
    statuses = [str(Status(s)) for s in status] if status is not None else None
    store = open_store()
    with store.read() as conn:
        rows = q.list_dispatches(conn, limit, statuses=statuses, name=name, since=since)
    return DispatchList(DispatchSummary.of(row) for row in rows)


def complete_dispatch_id(text: str) -> str:
    """The full id of the dispatch whose id begins with ``text`` (at least 6 characters,
    unique), or ``text`` itself."""
    store = open_store()
    with store.read() as conn:
        return q.complete_dispatch_id(conn, text)
