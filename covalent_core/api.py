"""The public functions: ``dispatch``, ``dispatch_sync``, ``get_result``, ``cancel``."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from . import config
from .errors import DispatchTimeoutError, TaskNotFoundError
from .graph import KIND_PARAMETER, KIND_POSTPROCESS, KIND_SUBLATTICE, Edge, downstream
from .result import CancelReport, NodeResult, Result
from .serialize import current_environment, lattice_records
from .service import client as service
from .status import TERMINAL, CancelReason, Status
from .store import open_store
from .store import queries as q
from .workflow import Lattice

POLL_START = 0.02
POLL_MAX = 0.5


def dispatch(lattice: Lattice) -> Callable[..., str]:
    """Return a function that dispatches ``lattice`` with the given arguments and returns its id.

    The workflow's graph is built and stored at once; the dispatch runs in the local
    dispatcher service (started if needed) and keeps running after this process exits.
    """
    if not isinstance(lattice, Lattice):
        raise TypeError(f"dispatch() takes a @lattice, not {type(lattice).__name__}")

    @functools.wraps(lattice.function)
    def submit(*args: Any, **kwargs: Any) -> str:
        records = lattice_records(lattice, args, kwargs)
        dispatch_id = str(uuid.uuid4())
        store = open_store()
        with store.write() as conn:
            q.insert_dispatch(
                conn,
                dispatch_id=dispatch_id,
                name=lattice.name,
                node_rows=records.nodes,
                edge_rows=records.edges,
                environment=current_environment(),
                lattice=records.lattice,
                inputs=records.inputs,
            )
        service.request({"op": "wake"})
        return dispatch_id

    return submit


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
) -> Any:
    """Read a dispatch and all its nodes; with ``wait=True``, first wait until it finished.

    Covalent's options: ``status_only`` returns ``{"id": ..., "status": ...}`` only;
    ``workflow_output=False`` leaves ``result.result`` None; ``intermediate_outputs=False``
    leaves node outputs unread; ``sublattice_results=False`` leaves each sublattice node's
    ``sublattice_result`` None. ``results_dir`` and ``dispatcher_addr`` are accepted and
    unused: results live in the store (``COVALENT_CORE_DB_URL``).

    Raises :class:`DispatchNotFoundError` for an unknown id and :class:`DispatchTimeoutError`
    when ``timeout`` seconds pass first (the dispatch keeps running).
    """
    if wait:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = POLL_START
        while not _status(dispatch_id).is_terminal:
            if deadline is not None and time.monotonic() >= deadline:
                raise DispatchTimeoutError(
                    f"dispatch {dispatch_id} did not finish within {timeout:g} s; it is still "
                    f"{_status(dispatch_id)}. Wait longer, or cancel it with "
                    f"ct.cancel({dispatch_id!r})."
                )
            time.sleep(
                delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic()))
            )
            delay = min(delay * 1.5, POLL_MAX)
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
        edges=[Edge(e.parent, e.child, e.edge_name, e.param_type, e.arg_index) for e in edge_rows],
        lattice_bytes=row.lattice,
        inputs_bytes=row.inputs,
        results_dir=str(config.data_dir()),
        _loader=functools.partial(get_result, workflow_output=workflow_output),
        _with_sublattices=sublattice_results,
        _with_output=workflow_output,
    )


def _not_found_message(
    dispatch_id: str, missing: list[int], node_rows: list[Any], subs: dict[int, str]
) -> str:
    ids = [r.node_id for r in node_rows]
    span = f"{min(ids)}-{max(ids)}" if ids else "none"
    msg = (
        f"task id(s) {', '.join(map(str, missing))} are not nodes of dispatch {dispatch_id} "
        f"(its nodes are {span}; list them with `covalent-core status {dispatch_id}`)."
    )
    sublattices = [r for r in node_rows if r.kind == KIND_SUBLATTICE]
    if sublattices:
        parts = []
        for r in sublattices:
            sub = subs.get(r.node_id)
            where = f"sub-dispatch {sub}" if sub else "not built yet"
            parts.append(f"node {r.node_id} {r.name} ({where})")
        msg += (
            " Nodes inside a sublattice belong to its own dispatch: "
            + "; ".join(parts)
            + ". Cancel the sublattice node, or address its sub-dispatch by id: "
            "ct.cancel(SUB_DISPATCH_ID, task_ids=[...])."
        )
    return msg


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
    report = request_cancel(dispatch_id, task_ids)
    if report.changed_anything:
        service.request({"op": "cancel", "dispatch_ids": [dispatch_id, *report.sub_dispatches]})
        if wait:
            _wait_cancelled(dispatch_id, report.cancelled, timeout)
    return report


def request_cancel(dispatch_id: str, task_ids: int | Iterable[int] | None = None) -> CancelReport:
    """Store the cancel flags (durably) and return the report; does not wake the dispatcher."""
    whole = task_ids is None
    if isinstance(task_ids, int):
        task_ids = [task_ids]
    requested_ids = None if task_ids is None else sorted(set(task_ids))
    store = open_store()
    with store.read() as conn:
        drow = q.get_dispatch(conn, dispatch_id)
        node_rows = q.get_nodes(conn, dispatch_id)
        edge_rows = q.get_edges(conn, dispatch_id)
    by_id = {r.node_id: r for r in node_rows}
    subs = {r.node_id: r.sub_dispatch_id for r in node_rows if r.sub_dispatch_id}
    if requested_ids is not None:
        missing = [i for i in requested_ids if i not in by_id]
        if missing:
            raise TaskNotFoundError(_not_found_message(dispatch_id, missing, node_rows, subs))
    targets = (
        [r.node_id for r in node_rows if r.kind != KIND_PARAMETER]
        if requested_ids is None
        else requested_ids
    )
    edges = [Edge(e.parent, e.child, e.edge_name, e.param_type) for e in edge_rows]
    below = sorted(downstream(edges, targets)) if not whole else []
    live = {i for i, r in by_id.items() if Status(r.status) not in TERMINAL}
    requested = [i for i in targets if i in live]
    below_live = [i for i in below if i in live]
    finished = {i: Status(by_id[i].status) for i in (targets if not whole else []) if i not in live}
    # Sublattice nodes among the cancelled: their sub-dispatches are cancelled whole.
    sub_ids: list[str] = []
    frontier = [subs[i] for i in requested + below_live if i in subs]
    with store.write() as conn:
        while frontier:
            sub = frontier.pop()
            sub_ids.append(sub)
            q.flag_cancel(conn, sub, None, CancelReason.PARENT_SUBLATTICE_CANCELLED.value)
            frontier.extend(
                r.sub_dispatch_id
                for r in q.get_nodes(conn, sub)
                if r.sub_dispatch_id and r.status not in q.TERMINAL_VALUES
            )
        if requested or below_live:
            if whole:
                q.flag_cancel(conn, dispatch_id, None, CancelReason.USER.value)
            else:
                q.flag_cancel(conn, dispatch_id, requested, CancelReason.USER.value)
                q.flag_cancel(conn, dispatch_id, below_live, CancelReason.UPSTREAM_CANCELLED.value)
    report = CancelReport(
        dispatch_id=dispatch_id,
        requested=requested,
        downstream=below_live,
        already_finished=finished,
        sub_dispatches=sub_ids,
        whole_dispatch=whole,
        dispatch_status=Status(drow.status),
        names={i: by_id[i].name for i in {*targets, *below}},
    )
    return report


def _wait_cancelled(dispatch_id: str, node_ids: list[int], timeout: float | None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = POLL_START
    store = open_store()
    wanted = set(node_ids)
    while True:
        with store.read() as conn:
            rows = q.get_nodes(conn, dispatch_id)
        pending = [
            r.node_id for r in rows if r.node_id in wanted and r.status not in q.TERMINAL_VALUES
        ]
        if not pending:
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise DispatchTimeoutError(
                f"tasks {pending} of dispatch {dispatch_id} were not confirmed cancelled within "
                f"{timeout:g} s; they stay CANCELLING while the dispatcher retries (see "
                f"`covalent-core status {dispatch_id}`)"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, POLL_MAX)


def list_dispatches(limit: int = 50) -> list[Any]:
    """Recent top-level dispatches, newest first."""
    store = open_store()
    with store.read() as conn:
        return q.list_dispatches(conn, limit)


__all__ = ["cancel", "dispatch", "dispatch_sync", "get_result", "list_dispatches"]
