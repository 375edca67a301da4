"""Requesting a cancel: the durable flags on the addressed nodes and everything downstream.

Used by ``ct.cancel`` in the client and by the dispatcher service's fast path alike; neither
depends on the other. Waking whoever runs the tasks is the caller's part.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._results_manager.result import CancelReport
from .errors import TaskNotFoundError
from .graph import KIND_SUBLATTICE
from .status import TERMINAL, CancelReason, Status
from .store import open_store
from .store import queries as q
from .store.triggers import end_held

if TYPE_CHECKING:
    from sqlalchemy import Connection


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
            "ct.cancel(SUB_DISPATCH_ID, task_ids=[...]) "
            "(`covalent-core cancel SUB_DISPATCH_ID --task N`)."
        )
    return msg


def task_id_list(task_ids: object) -> list[int]:
    """``task_ids`` as a list: an int, or an iterable of ints; nothing else (no bools, no
    strings, no floats), so that ``"12"`` is never read as tasks 1 and 2."""

    def bad(what: object, item: object = None) -> TypeError:
        shown = repr(what) if len(repr(what)) <= 80 else f"{repr(what)[:60]}..."
        inside = "" if item is None else f" holding {item!r} ({type(item).__name__})"
        return TypeError(
            "task_ids must be a task id (int) or an iterable of them, "
            f"got {shown} ({type(what).__name__}){inside}"
        )

    if isinstance(task_ids, numbers.Integral) and not isinstance(task_ids, bool):
        return [int(task_ids)]
    if isinstance(task_ids, (str, bytes, bytearray, dict, bool)) or not isinstance(
        task_ids, Iterable
    ):
        raise bad(task_ids)
    ids = list(task_ids)
    for item in ids:
        if not isinstance(item, numbers.Integral) or isinstance(item, bool):
            raise bad(task_ids if isinstance(task_ids, (list, tuple, set)) else ids, item)
    return [int(item) for item in ids]


def request_cancel(
    dispatch_id: str,
    task_ids: int | Iterable[int] | None = None,
    reason: str = CancelReason.USER.value,
) -> CancelReport:
    """Store the cancel flags (durably) and return the report; does not wake the dispatcher."""
    # One transaction: what is read is what is flagged (and one commit is quicker than two).
    with open_store().write() as conn:
        return flag_in(conn, dispatch_id, task_ids, reason)


def flag_in(
    conn: Connection,
    dispatch_id: str,
    task_ids: int | Iterable[int] | None = None,
    reason: str = CancelReason.USER.value,
) -> CancelReport:
    """As :func:`request_cancel`, in the caller's write transaction (``reason``: a user's,
    or the service's: ``deadline``). An error (an unknown dispatch or task) is raised before
    anything is written."""
    whole = task_ids is None
    requested_ids = None if task_ids is None else sorted(set(task_id_list(task_ids)))
    drow = q.get_dispatch(conn, dispatch_id)
    if whole:  # every unfinished task: only those are read (100,000 of them, say)
        node_rows = q.get_live_task_states(conn, dispatch_id)
        subs = {r.node_id: r.sub_dispatch_id for r in node_rows if r.sub_dispatch_id}
        requested = [node_id for node_id, *_ in node_rows]
        names = {node_id: name for node_id, name, *_ in node_rows}
        below_live: list[int] = []
        finished: dict[int, Status] = {}
    else:  # the addressed nodes and what is below them: not the whole graph
        node_rows, below = q.get_addressed_states(conn, dispatch_id, requested_ids or [])
        subs = {r.node_id: r.sub_dispatch_id for r in node_rows if r.sub_dispatch_id}
        requested, below_live, finished, names = _addressed(
            conn, dispatch_id, requested_ids or [], node_rows, below
        )
    # Sublattice nodes among the cancelled: their sub-dispatches are cancelled whole.
    sub_ids: list[str] = []
    frontier = [subs[i] for i in requested + below_live if i in subs]
    while frontier:
        sub = frontier.pop()
        sub_ids.append(sub)
        q.flag_cancel(conn, sub, None, CancelReason.PARENT_SUBLATTICE_CANCELLED.value)
        frontier.extend(
            r.sub_dispatch_id
            for r in q.get_node_states(conn, sub)
            if r.sub_dispatch_id and r.status not in q.TERMINAL_VALUES
        )
    if requested or below_live:
        if whole:
            q.flag_cancel(conn, dispatch_id, None, reason)
        else:
            q.flag_cancel(conn, dispatch_id, requested, reason)
            q.flag_cancel(conn, dispatch_id, below_live, CancelReason.UPSTREAM_CANCELLED.value)
    status = Status(drow.status)
    if whole and drow.held and end_held(conn, dispatch_id, Status.CANCELLED, reason):
        status = Status.CANCELLED  # registered, never started: no service will settle it
    if requested or below_live or sub_ids:
        # The service running it may be on another host sharing the store: tell it now.
        q.notify_cancel(conn, [dispatch_id, *sub_ids])
    report = CancelReport(
        dispatch_id=dispatch_id,
        requested=requested,
        downstream=below_live,
        already_finished=finished,
        sub_dispatches=sub_ids,
        whole_dispatch=whole,
        dispatch_status=status,
        reason=reason,
        names=names,
    )
    return report


def _addressed(
    conn: Connection,
    dispatch_id: str,
    targets: list[int],
    node_rows: list[Any],
    below: set[int],
) -> tuple[list[int], list[int], dict[int, Status], dict[int, str]]:
    """For a cancel of ``targets`` (``node_rows``: theirs and those of the nodes ``below``
    them): the unfinished ones, the unfinished nodes downstream, the targets already
    finished (and their statuses), and the names of all of them."""
    by_id = {r.node_id: r for r in node_rows}
    missing = [i for i in targets if i not in by_id]
    if missing:
        every = q.get_node_states(conn, dispatch_id)
        subs = {r.node_id: r.sub_dispatch_id for r in every if r.sub_dispatch_id}
        raise TaskNotFoundError(_not_found_message(dispatch_id, missing, every, subs))
    live = {i for i, r in by_id.items() if Status(r.status) not in TERMINAL}
    requested = [i for i in targets if i in live]
    below_live = [i for i in sorted(below) if i in live]
    finished = {i: Status(by_id[i].status) for i in targets if i not in live}
    names = {i: by_id[i].name for i in {*targets, *below}}
    return requested, below_live, finished, names
