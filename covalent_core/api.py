"""The public functions: ``dispatch``, ``dispatch_sync``, ``redispatch``, ``get_result``,
``cancel``."""

from __future__ import annotations

import contextlib
import copy
import errno
import functools
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import cloudpickle

from . import config, host_environment
from ._results_manager.result import CancelReport, DispatchList, NodeResult, Result
from ._workflow import Lattice
from .cancel_requests import request_cancel, task_id_list
from .errors import (
    DispatchTimeoutError,
    SerializationError,
    ServiceError,
    StoreFullError,
    store_full_message,
)
from .graph import KIND_POSTPROCESS, Edge
from .progress import progress_bar
from .reuse import reuse_outputs
from .serialize import current_environment, lattice_records
from .service import client as service
from .status import Status
from .store import open_store
from .store import queries as q
from .values import discard_values, read_value, store_big

POLL_START = 0.02
POLL_MAX = 0.5
# How often a waiting client checks that a service is still running the dispatch.
REVIVE_EVERY = 2.0
# A waiting client re-reads the store and asks the service again at least this often.
WATCH_MAX = 60.0


def dispatch(
    lattice: Lattice, dispatcher_addr: str | None = None, *, key: str | None = None
) -> Callable[..., str]:
    """Return a function that dispatches ``lattice`` with the given arguments and returns its id.

    The workflow's graph is built and stored at once; the dispatch runs in the local
    dispatcher service (started if needed) and keeps running after this process exits. The
    call is exactly once: it returns the id of a dispatch that will run, or raises having
    stored nothing. ``key`` (an idempotency key of the caller's) makes a retry safe: a
    dispatch with a key already stored returns that dispatch's id and stores nothing new.
    ``dispatcher_addr`` (Covalent's server address) is accepted and unused.
    """
    if not isinstance(lattice, Lattice):
        raise TypeError(f"dispatch() takes a @lattice, not {type(lattice).__name__}")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= MAX_KEY):
        raise TypeError(f"dispatch()'s key is a string of 1 to {MAX_KEY} characters, not {key!r}")

    @functools.wraps(lattice.function)
    def submit(*args: Any, **kwargs: Any) -> str:
        return _submit(lattice, args, kwargs, key=key)

    return submit


MAX_KEY = 255


def _submit(
    lattice: Lattice,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    redispatched_from: str | None = None,
    reuse: bool = False,
    import_path: list[str] | None = None,
    key: str | None = None,
) -> str:
    """Build, store and wake the service; the new dispatch's id (or, with ``key``, that of
    the dispatch already stored under it). A redispatch with ``reuse`` takes the outputs of
    the nodes that ``redispatched_from`` completed with the same work."""
    store = open_store()
    if key is not None:
        with store.read() as conn:
            existing = q.dispatch_by_key(conn, key)
        if existing is not None:
            service.request({"op": "wake"})  # it may be waiting for a service
            return existing
    records = lattice_records(lattice, args, kwargs)
    dispatch_id = str(uuid.uuid4())
    try:
        for row in records.nodes:  # big inputs go to files, not into the store
            if row.get("output") is not None:
                name = f"{row['node_id']}-input.pickle"
                row["output"] = store_big(dispatch_id, name, row["output"])
        if reuse and redispatched_from is not None:
            with store.read() as conn:
                previous = list(q.iter_reusable_nodes(conn, redispatched_from))
            reuse_outputs(records.nodes, previous, redispatched_from)
        environment = current_environment()
        environment["sys_path"] += [
            p for p in import_path or () if p not in environment["sys_path"]
        ]
        variables = environment.pop("variables")
        if host_environment.mode() == "client":  # kept on this host, never in the store
            environment.update(host_environment.keep(dispatch_id, variables))
        with store.write() as conn:
            if key is not None and (existing := q.dispatch_by_key(conn, key)) is not None:
                raise _KeyTaken(existing)
            q.insert_dispatch(
                conn,
                dispatch_id=dispatch_id,
                name=lattice.name,
                node_rows=records.nodes,
                edge_rows=records.edges,
                environment=environment,
                lattice=records.lattice,
                inputs=store_big(dispatch_id, "inputs.pickle", records.inputs),
                redispatched_from=redispatched_from,
                key=key,
            )
    except _KeyTaken as taken:  # another caller stored that key a moment ago
        _discard(dispatch_id)
        service.request({"op": "wake"})
        return taken.dispatch_id
    except BaseException as exc:
        _discard(dispatch_id)  # nothing of a dispatch that was not stored stays
        if key is not None and (existing := _stored_under(key)) is not None:
            return existing  # the same key, stored by another caller at the same moment
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreFullError(
                f"{exc.filename or config.data_dir()} could not be written: {exc.strerror}. "
                "Nothing of this dispatch was stored; free some space there (or point "
                "COVALENT_CORE_DATA_DIR elsewhere) and try again."
            ) from None
        raise
    _wake_or_withdraw(store, dispatch_id)
    return dispatch_id


def _discard(dispatch_id: str) -> None:
    """Remove what was kept on this host for a dispatch that was not stored after all."""
    discard_values(dispatch_id)
    host_environment.discard(dispatch_id)


class _KeyTaken(Exception):
    def __init__(self, dispatch_id: str) -> None:
        self.dispatch_id = dispatch_id


def _stored_under(key: str) -> str | None:
    with contextlib.suppress(Exception), open_store().read() as conn:
        return q.dispatch_by_key(conn, key)
    return None


def _wake_or_withdraw(store: Any, dispatch_id: str) -> None:
    """Wake the service for a stored dispatch. If no service can be reached, the dispatch is
    withdrawn (unless a service claimed it meanwhile: then it runs) and the error raised, so
    that a caller who sees an error knows nothing was stored."""
    try:
        service.request({"op": "wake"})
    except BaseException as exc:
        try:
            with store.write() as conn:
                withdrawn = q.withdraw_dispatch(conn, dispatch_id)
        except Exception:
            withdrawn = False
        if not withdrawn:
            if isinstance(exc, Exception):
                return  # a service has it: it runs
            raise
        _discard(dispatch_id)
        if isinstance(exc, ServiceError):
            raise ServiceError(f"{exc} (the dispatch was withdrawn: nothing was stored)") from None
        raise


def redispatch(
    dispatch_id: str,
    new_lattice: Lattice | None = None,
    replace_electrons: dict[str, Any] | None = None,
    reuse_previous_results: bool = False,
    dispatcher_addr: str | None = None,
) -> Callable[..., str]:
    """Return a function that dispatches a dispatch's workflow again; it returns the new id.

    As Covalent's ``ct.redispatch``: called with no arguments it uses the earlier inputs, else
    the new ones; ``replace_electrons={"name": electron}`` builds the graph with those
    electrons in place of the ones of that name; ``new_lattice`` (ours) replaces the whole
    workflow. With ``reuse_previous_results``, a node whose work is unchanged (same code,
    options, executor and inputs, recursively: :mod:`covalent_core.reuse`) and which COMPLETED
    there is not run again: its output is taken, not copied, and the node records where it
    came from (``NodeResult.reused_from``). A reused node never reaches an executor. Reuse
    works after a cancel or a failure alike. ``dispatcher_addr`` (Covalent's second argument,
    also accepted in that place) is ignored: there is no server address.
    """
    if isinstance(new_lattice, str):  # Covalent's second argument: dispatcher_addr
        new_lattice = None  # an address, which means nothing here
    if new_lattice is not None and not isinstance(new_lattice, Lattice):
        raise TypeError(f"redispatch's new_lattice is a @lattice, not {type(new_lattice).__name__}")
    replacements = dict(replace_electrons or {})
    for name, replacement in replacements.items():
        if not isinstance(name, str) or not callable(replacement):
            raise TypeError(
                "replace_electrons maps an electron's function name to its new electron, "
                f"not {name!r}: {replacement!r}"
            )
    store = open_store()
    with store.read() as conn:
        row = q.get_dispatch(conn, dispatch_id, with_result=True)
    if row.parent_dispatch_id is not None:
        raise ValueError(
            f"{dispatch_id} is a sublattice's dispatch; redispatch its top-level dispatch "
            f"({row.root_dispatch_id})"
        )

    import_path = (row.environment or {}).get("sys_path") or []

    def submit(*args: Any, **kwargs: Any) -> str:
        # What the workflow's code imports is found as it was when it was dispatched, here
        # and where its tasks run.
        with _import_path(import_path):
            lattice = new_lattice or _stored(row.lattice, dispatch_id, "workflow")
            if not args and not kwargs and row.inputs is not None:
                inputs = _stored(read_value(row.inputs), dispatch_id, "inputs")
                args, kwargs = tuple(inputs["args"]), dict(inputs["kwargs"])
        lattice = copy.copy(lattice)
        lattice.replace_electrons = {**lattice.replace_electrons, **replacements}
        return _submit(
            lattice,
            args,
            kwargs,
            redispatched_from=dispatch_id,
            reuse=reuse_previous_results,
            import_path=import_path,
        )

    return submit


@contextlib.contextmanager
def _import_path(entries: list[str]) -> Iterator[None]:
    """While inside, ``entries`` that ``sys.path`` lacks are on it (after its own)."""
    added = [entry for entry in entries if entry not in sys.path]
    sys.path.extend(added)
    try:
        yield
    finally:
        for entry in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)


def _stored(data: bytes | None, dispatch_id: str, what: str) -> Any:
    """Unpickle a dispatch's stored workflow or inputs, saying what to do when it fails."""
    try:
        if data is None:
            raise ValueError("it was not stored")
        return cloudpickle.loads(data)
    except Exception as exc:
        remedy = "pass new_lattice=" if what == "workflow" else "pass the arguments"
        raise SerializationError(
            f"the {what} of dispatch {dispatch_id} cannot be loaded here "
            f"({type(exc).__name__}: {exc}); {remedy} to redispatch"
        ) from None


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
    return DispatchList(rows)


def complete_dispatch_id(text: str) -> str:
    """The full id of the dispatch whose id begins with ``text`` (at least 6 characters,
    unique), or ``text`` itself."""
    store = open_store()
    with store.read() as conn:
        return q.complete_dispatch_id(conn, text)


__all__ = [
    "cancel",
    "complete_dispatch_id",
    "dispatch",
    "dispatch_sync",
    "get_result",
    "list_dispatches",
    "redispatch",
]
