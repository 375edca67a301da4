"""Reads and writes of whole records, shared by the client, the CLI and the dispatcher."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from ..errors import AmbiguousDispatchIdError, DispatchIdTooShortError, DispatchNotFoundError
from ..graph import KIND_PARAMETER
from ..status import TERMINAL, Status
from .schema import dispatches, edges, jobs, nodes, triggers

TERMINAL_VALUES = [s.value for s in TERMINAL]

# Dispatch columns that hold pickles, read only when asked for.
BLOB_COLUMNS = ("lattice", "inputs")

# Node columns without the (possibly large) blobs.
NODE_SUMMARY = [c for c in nodes.c if c.name not in ("function", "hooks", "output")]


def insert_dispatch(
    conn: Connection,
    *,
    dispatch_id: str,
    name: str,
    node_rows: list[dict[str, Any]],
    edge_rows: list[dict[str, Any]],
    environment: dict[str, Any],
    lattice: bytes | None = None,
    inputs: bytes | None = None,
    parent_dispatch_id: str | None = None,
    parent_node_id: int | None = None,
    root_dispatch_id: str | None = None,
    owner: str | None = None,
    status: Status = Status.NEW_OBJECT,
    redispatched_from: str | None = None,
    key: str | None = None,
    held: bool = False,
    triggered_by: str | None = None,
    deadline_at: float | None = None,
) -> None:
    """Insert a dispatch with its nodes and edges; ``held``: registered, not started."""
    now = time.time()
    conn.execute(
        insert(dispatches).values(
            dispatch_id=dispatch_id,
            name=name[:255],
            status=status.value,
            parent_dispatch_id=parent_dispatch_id,
            parent_node_id=parent_node_id,
            root_dispatch_id=root_dispatch_id or dispatch_id,
            created_at=now,
            started_at=now if owner else None,
            owner=owner,
            cancel_requested=False,
            environment=environment,
            lattice=lattice,
            inputs=inputs,
            num_nodes=len(node_rows),
            redispatched_from=redispatched_from,
            dispatch_key=key,
            held=held,
            triggered_by=triggered_by,
            deadline_at=deadline_at,
        )
    )
    if node_rows:
        conn.execute(insert(nodes), [{"dispatch_id": dispatch_id, **r} for r in node_rows])
    if edge_rows:
        conn.execute(insert(edges), [{"dispatch_id": dispatch_id, **r} for r in edge_rows])


def dispatch_by_key(conn: Connection, key: str) -> str | None:
    """The id of the dispatch stored with idempotency key ``key``, if any."""
    stmt = select(dispatches.c.dispatch_id).where(dispatches.c.dispatch_key == key)
    return conn.execute(stmt).scalar_one_or_none()


def withdraw_dispatch(conn: Connection, dispatch_id: str) -> bool:
    """Delete a dispatch no service has claimed yet (with its nodes, edges and triggers);
    False if one has (it runs, and stays)."""
    stmt = delete(dispatches).where(
        and_(dispatches.c.dispatch_id == dispatch_id, dispatches.c.owner.is_(None))
    )
    if conn.execute(stmt).rowcount != 1:
        return False
    for table in (edges, nodes, triggers):  # foreign keys cascade too, where the store has them
        conn.execute(delete(table).where(table.c.dispatch_id == dispatch_id))
    return True


CHUNK = 500  # ids per IN (...) list: SQLite allows 32,766 parameters a statement


def chunks(ids: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """``ids`` in lists of ``size`` (for ``IN`` lists within the database's parameter limit)."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


MAX_DISPATCH_ID = 200  # longer ids are not ours (ours are UUIDs): not found, without a query


REUSABLE = [
    nodes.c[name]
    for name in (
        "node_id", "status", "content_key", "reused_from", "sub_dispatch_id", "output",
        "output_repr", "stdout", "stderr", "started_at", "ended_at",
    )
]  # fmt: skip


def iter_reusable_nodes(conn: Connection, dispatch_id: str) -> Iterator[Row[Any]]:
    """The dispatch's COMPLETED nodes with what a redispatch reuses of them."""
    stmt = select(*REUSABLE).where(
        and_(nodes.c.dispatch_id == dispatch_id, nodes.c.status == Status.COMPLETED.value)
    )
    yield from conn.execute(stmt)


def get_dispatch(conn: Connection, dispatch_id: str, *, with_result: bool = False) -> Row[Any]:
    """The dispatch row; :class:`DispatchNotFoundError` lists recent ids when there is none."""
    if not isinstance(dispatch_id, str):
        raise TypeError(
            f"a dispatch id is a string (what dispatch returned), got {type(dispatch_id).__name__}"
        )
    if len(dispatch_id) > MAX_DISPATCH_ID:
        raise DispatchNotFoundError(dispatch_id, recent_dispatch_ids(conn))
    columns = [c for c in dispatches.c if with_result or c.name not in BLOB_COLUMNS]
    row = conn.execute(select(*columns).where(dispatches.c.dispatch_id == dispatch_id)).first()
    if row is None:
        raise DispatchNotFoundError(dispatch_id, recent_dispatch_ids(conn))
    return row


def recent_dispatch_ids(conn: Connection, limit: int = 5) -> list[str]:
    """The ids of the most recent top-level dispatches."""
    rows = conn.execute(
        select(dispatches.c.dispatch_id)
        .where(dispatches.c.parent_dispatch_id.is_(None))
        .order_by(dispatches.c.created_at.desc())
        .limit(limit)
    )
    return [r[0] for r in rows]


def list_dispatches(
    conn: Connection,
    limit: int = 50,
    *,
    statuses: list[str] | None = None,
    name: str | None = None,
    since: float | None = None,
    prefix: str | None = None,
) -> list[Row[Any]]:
    """Recent top-level dispatches, newest first; only those with one of ``statuses``, whose
    name contains ``name``, created at or after ``since`` (seconds since the epoch), whose id
    begins with ``prefix``."""
    columns = [c for c in dispatches.c if c.name not in BLOB_COLUMNS]
    conditions = [dispatches.c.parent_dispatch_id.is_(None)]
    if prefix:
        conditions.append(dispatches.c.dispatch_id.startswith(prefix, autoescape=True))
    if statuses:
        conditions.append(dispatches.c.status.in_(statuses))
    if name:
        conditions.append(dispatches.c.name.contains(name, autoescape=True))
    if since is not None:
        conditions.append(dispatches.c.created_at >= since)
    stmt = select(*columns).where(and_(*conditions))
    return list(conn.execute(stmt.order_by(dispatches.c.created_at.desc()).limit(limit)))


def task_counts(conn: Connection, dispatch_id: str) -> tuple[int, int]:
    """(finished, all) of the dispatch's nodes other than parameters."""
    finished = func.sum(case((nodes.c.status.in_(TERMINAL_VALUES), 1), else_=0))
    stmt = select(func.coalesce(finished, 0), func.count()).where(
        and_(nodes.c.dispatch_id == dispatch_id, nodes.c.kind != KIND_PARAMETER)
    )
    done, total = conn.execute(stmt).one()
    return int(done), int(total)


def task_counts_of(conn: Connection, dispatch_ids: list[str]) -> dict[str, tuple[int, int]]:
    """:func:`task_counts` of several dispatches in one query."""
    finished = func.sum(case((nodes.c.status.in_(TERMINAL_VALUES), 1), else_=0))
    stmt = (
        select(nodes.c.dispatch_id, func.coalesce(finished, 0), func.count())
        .where(and_(nodes.c.dispatch_id.in_(dispatch_ids), nodes.c.kind != KIND_PARAMETER))
        .group_by(nodes.c.dispatch_id)
    )
    counts = {row[0]: (int(row[1]), int(row[2])) for row in conn.execute(stmt)}
    return {d: counts.get(d, (0, 0)) for d in dispatch_ids}


MIN_PREFIX = 6
"""The shortest prefix of a dispatch id that is accepted in its place."""


def complete_dispatch_id(conn: Connection, text: str) -> str:
    """The dispatch id ``text`` is, or begins when it is a unique prefix of at least
    :data:`MIN_PREFIX` characters; ``text`` itself otherwise (reading it then says it is
    unknown). Several matches: :class:`AmbiguousDispatchIdError` naming them."""
    if len(text) >= MAX_DISPATCH_ID:
        return text
    if len(text) < MIN_PREFIX:
        begins = select(dispatches.c.dispatch_id).where(
            dispatches.c.dispatch_id.startswith(text, autoescape=True)
        )
        if text and conn.execute(begins.limit(1)).first() is not None:
            raise DispatchIdTooShortError(
                f"{text!r} is too short a prefix: give at least {MIN_PREFIX} characters of the id "
                "(`covalent-core list` shows them)"
            )
        return text
    exact = select(dispatches.c.dispatch_id).where(dispatches.c.dispatch_id == text)
    if conn.execute(exact).first() is not None:
        return text
    stmt = (
        select(dispatches.c.dispatch_id)
        .where(dispatches.c.dispatch_id.startswith(text, autoescape=True))
        .limit(3)
    )
    found = [row.dispatch_id for row in conn.execute(stmt)]
    if len(found) > 1:
        raise AmbiguousDispatchIdError(
            f"{text!r} begins several dispatch ids ({', '.join(found[:2])}, ...): give more of it"
        )
    return found[0] if found else text


def get_nodes(
    conn: Connection,
    dispatch_id: str,
    *,
    blobs: bool = False,
    outputs: bool = False,
    node_id: int | None = None,
) -> list[Row[Any]]:
    """The dispatch's nodes in id order (only ``node_id``, if given), with the job handle of
    each.

    ``blobs`` adds functions and outputs (for running them); ``outputs`` adds outputs only.
    """
    columns = (
        list(nodes.c) if blobs else [*NODE_SUMMARY, nodes.c.output] if outputs else NODE_SUMMARY
    )
    stmt = (
        select(
            *columns,
            jobs.c.handle.label("job_handle"),
            jobs.c.cancel_error.label("job_cancel_error"),
            jobs.c.attached_by.label("job_attached_by"),
            jobs.c.attached_at.label("job_attached_at"),
        )
        .select_from(nodes.outerjoin(jobs, nodes.c.job_id == jobs.c.job_id))
        .where(nodes.c.dispatch_id == dispatch_id)
        .order_by(nodes.c.node_id)
    )
    if node_id is not None:
        stmt = stmt.where(nodes.c.node_id == node_id)
    return conn.execute(stmt).all()  # fetched at once: faster than row by row


# What the dispatcher needs of a node to run it (not its stdout, stderr or traceback).
NODE_TO_RUN = [
    nodes.c[name]
    for name in (
        "node_id", "name", "kind", "status", "stage", "cancel_requested", "cancel_reason",
        "executor", "executor_config", "timeout", "function", "hooks", "output", "error",
        "started_at", "job_id", "sub_dispatch_id",
    )
]  # fmt: skip


def iter_nodes_to_run(conn: Connection, dispatch_id: str) -> Iterator[Row[Any]]:
    """The dispatch's nodes in id order, with what running them needs, one row at a time."""
    stmt = (
        select(*NODE_TO_RUN, jobs.c.handle.label("job_handle"))
        .select_from(nodes.outerjoin(jobs, nodes.c.job_id == jobs.c.job_id))
        .where(nodes.c.dispatch_id == dispatch_id)
        .order_by(nodes.c.node_id)
    )
    yield from conn.execute(stmt)


NODE_STATE = (nodes.c.node_id, nodes.c.name, nodes.c.kind, nodes.c.status, nodes.c.sub_dispatch_id)


def get_node_states(conn: Connection, dispatch_id: str) -> list[Row[Any]]:
    """Id, name, kind, status and sub-dispatch of each node, in id order (for cancelling)."""
    stmt = select(*NODE_STATE).where(nodes.c.dispatch_id == dispatch_id).order_by(nodes.c.node_id)
    return conn.execute(stmt).all()


def get_addressed_states(
    conn: Connection, dispatch_id: str, targets: list[int]
) -> tuple[list[Row[Any]], set[int]]:
    """:func:`get_node_states` of ``targets`` and of every node downstream of them, and the
    ids of those downstream (not the targets): a walk of the edges in the store, which reads
    no more of the graph than the cancel of ``targets`` touches."""
    below = (
        select(edges.c.child.label("node_id"))
        .where(and_(edges.c.dispatch_id == dispatch_id, edges.c.parent.in_(targets)))
        .cte("below", recursive=True)
    )
    below = below.union(
        select(edges.c.child).where(
            and_(edges.c.dispatch_id == dispatch_id, edges.c.parent == below.c.node_id)
        )
    )
    reached = {row.node_id for row in conn.execute(select(below.c.node_id))}
    wanted = sorted(reached | set(targets))
    rows: list[Row[Any]] = []
    for chunk in chunks(wanted):
        stmt = select(*NODE_STATE).where(
            and_(nodes.c.dispatch_id == dispatch_id, nodes.c.node_id.in_(chunk))
        )
        rows.extend(conn.execute(stmt))
    rows.sort(key=lambda r: r.node_id)
    return rows, reached - set(targets)


NODE_VIEW = (
    *NODE_STATE, nodes.c.stage, nodes.c.cancel_reason, nodes.c.output_repr, nodes.c.started_at,
    nodes.c.ended_at,
)  # fmt: skip


def get_node_views(
    conn: Connection, dispatch_id: str, node_ids: list[int] | None = None
) -> list[Row[Any]]:
    """As :func:`get_node_states`, with each node's stage, cancel reason, output's short
    repr and times: what a view of the whole graph shows (only ``node_ids``, if given)."""
    stmt = select(*NODE_VIEW).where(nodes.c.dispatch_id == dispatch_id).order_by(nodes.c.node_id)
    if node_ids is not None:
        stmt = stmt.where(nodes.c.node_id.in_(node_ids))
    return conn.execute(stmt).all()


def get_live_task_states(conn: Connection, dispatch_id: str) -> list[Row[Any]]:
    """As :func:`get_node_states`, for the unfinished nodes other than parameters only."""
    stmt = (
        select(*NODE_STATE)
        .where(
            and_(
                nodes.c.dispatch_id == dispatch_id,
                nodes.c.kind != KIND_PARAMETER,
                nodes.c.status.not_in(TERMINAL_VALUES),
            )
        )
        .order_by(nodes.c.node_id)
    )
    return conn.execute(stmt).all()


EDGE_FIELDS = (
    edges.c.parent,
    edges.c.child,
    edges.c.edge_name,
    edges.c.param_type,
    edges.c.arg_index,
)


def iter_edges(conn: Connection, dispatch_id: str) -> Iterator[Row[Any]]:
    """The dispatch's edges (parent, child, name, type, index) in order, one at a time."""
    stmt = (
        select(*EDGE_FIELDS).where(edges.c.dispatch_id == dispatch_id).order_by(edges.c.edge_index)
    )
    yield from conn.execute(stmt)


def get_edges(conn: Connection, dispatch_id: str, child: int | None = None) -> list[Row[Any]]:
    """The dispatch's edges in the order they were added: (parent, child, edge_name,
    param_type, arg_index), the fields of :class:`covalent_core.graph.Edge` in its order;
    only those into ``child``, if given."""
    stmt = select(*EDGE_FIELDS).where(edges.c.dispatch_id == dispatch_id)
    if child is not None:
        stmt = stmt.where(edges.c.child == child)
    return conn.execute(stmt.order_by(edges.c.edge_index)).all()


def sub_dispatches(conn: Connection, dispatch_id: str) -> list[Row[Any]]:
    """Dispatches whose parent is ``dispatch_id``."""
    return list(
        conn.execute(
            select(
                dispatches.c.dispatch_id, dispatches.c.parent_node_id, dispatches.c.status
            ).where(dispatches.c.parent_dispatch_id == dispatch_id)
        )
    )


CANCEL_CHANNEL = "covalent_core_cancel"


def notify_cancel(conn: Connection, dispatch_ids: list[str]) -> None:
    """Announce stored cancels to every service listening (PostgreSQL ``NOTIFY``, sent when
    the transaction commits); nothing on SQLite, whose one host's service is woken directly."""
    if conn.dialect.name != "postgresql":
        return
    for dispatch_id in dict.fromkeys(dispatch_ids):
        conn.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CANCEL_CHANNEL, "payload": dispatch_id},
        )


def flag_cancel(
    conn: Connection, dispatch_id: str, node_ids: list[int] | None, reason: str
) -> None:
    """Set ``cancel_requested`` (and the reason, if none yet) on unfinished nodes; with
    ``node_ids`` None, on the dispatch, which stands for all of them."""
    if node_ids is None:
        conn.execute(
            update(dispatches)
            .where(dispatches.c.dispatch_id == dispatch_id)
            .values(
                cancel_requested=True,
                cancel_reason=func.coalesce(dispatches.c.cancel_reason, reason),
            )
        )
        return
    update_unfinished_nodes(
        conn,
        dispatch_id,
        node_ids,
        {"cancel_requested": True, "cancel_reason": reason_unless_set(reason)},
    )


def update_unfinished_nodes(
    conn: Connection, dispatch_id: str, node_ids: list[int], values: dict[str, Any]
) -> None:
    """Set ``values`` on those of ``node_ids`` that have not ended (terminal statuses are
    sticky), a few hundred nodes per statement."""
    base = and_(nodes.c.dispatch_id == dispatch_id, nodes.c.status.not_in(TERMINAL_VALUES))
    for chunk in chunks(node_ids):
        conn.execute(update(nodes).where(and_(base, nodes.c.node_id.in_(chunk))).values(values))


# -- what the dispatcher service writes and reads ----------------------------------------


def update_dispatch(conn: Connection, dispatch_id: str, status: Status, **values: Any) -> None:
    """Set a dispatch's status (and other columns) unless it already ended."""
    conn.execute(
        update(dispatches)
        .where(
            and_(
                dispatches.c.dispatch_id == dispatch_id,
                dispatches.c.status.not_in(TERMINAL_VALUES),
            )
        )
        .values(status=status.value, **values)
    )


def fail_dispatch(conn: Connection, dispatch_id: str, error: str) -> None:
    """End a dispatch FAILED with ``error``; no node of it may look pending afterwards."""
    now = time.time()
    conn.execute(
        update(nodes)
        .where(and_(nodes.c.dispatch_id == dispatch_id, nodes.c.status.not_in(TERMINAL_VALUES)))
        .values(status=Status.FAILED.value, error=error, ended_at=now)
    )
    update_dispatch(conn, dispatch_id, Status.FAILED, error=error, ended_at=now)


def statuses_of(conn: Connection, dispatch_ids: list[str]) -> dict[str, Status]:
    """The status of each of ``dispatch_ids`` that is stored."""
    found: dict[str, Status] = {}
    for chunk in chunks(dispatch_ids):
        stmt = select(dispatches.c.dispatch_id, dispatches.c.status).where(
            dispatches.c.dispatch_id.in_(chunk)
        )
        found.update({row.dispatch_id: Status(row.status) for row in conn.execute(stmt)})
    return found


def insert_job(
    conn: Connection,
    dispatch_id: str,
    executor: str,
    config: dict[str, Any],
    handle: str,
    node_id: int | None = None,
) -> int:
    """Record a job on a resource, and as ``node_id``'s job if given; returns its id."""
    result = conn.execute(
        _INSERT_JOB,
        {
            "dispatch_id": dispatch_id,
            "executor": executor,
            "executor_config": config,
            "handle": handle,
            "created_at": time.time(),
            "state": "active",
            "cancel_attempts": 0,
        },
    )
    job_id = int(result.inserted_primary_key[0])
    if node_id is not None:
        conn.execute(_SET_NODE_JOB, {"d": dispatch_id, "n": node_id, "job_id": job_id})
    return job_id


# Built once (one is run per task started): building a statement costs more than running it.
_INSERT_JOB = insert(jobs)
_SET_NODE_JOB = update(nodes).where(
    and_(nodes.c.dispatch_id == bindparam("d"), nodes.c.node_id == bindparam("n"))
)


def node_job(conn: Connection, dispatch_id: str, node_id: int) -> Row[Any] | None:
    """The node's job as stored (``executor``, ``executor_config``, ``handle``) with the
    node's ``status``; None if the node has no job."""
    return conn.execute(
        select(jobs.c.executor, jobs.c.executor_config, jobs.c.handle, nodes.c.status)
        .select_from(nodes.join(jobs, nodes.c.job_id == jobs.c.job_id))
        .where(and_(nodes.c.dispatch_id == dispatch_id, nodes.c.node_id == node_id))
    ).first()


def update_job(conn: Connection, job_id: int, **values: Any) -> None:
    """Update a job: its cancel state (``state``, ``cancel_attempts``, ``cancel_error``), or
    who re-attached to it (``attached_by``, ``attached_at``)."""
    conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(**values))


def reason_unless_set(reason: str) -> Any:
    """A node's cancel reason in an update: the one it has, else ``reason``."""
    return func.coalesce(nodes.c.cancel_reason, reason)


def cancelled_dispatches(conn: Connection, dispatch_ids: list[str]) -> dict[str, str | None]:
    """Those of ``dispatch_ids`` cancelled whole (their own flag is set), with the reason."""
    rows = conn.execute(
        select(dispatches.c.dispatch_id, dispatches.c.cancel_reason).where(
            and_(
                dispatches.c.dispatch_id.in_(dispatch_ids),
                dispatches.c.cancel_requested.is_(True),
            )
        )
    )
    return {row.dispatch_id: row.cancel_reason for row in rows}


def cancel_requests(conn: Connection, dispatch_ids: list[str]) -> list[Row[Any]]:
    """Unfinished nodes of these dispatches whose cancel flag is set."""
    return list(
        conn.execute(
            select(nodes.c.dispatch_id, nodes.c.node_id, nodes.c.cancel_reason).where(
                and_(
                    nodes.c.dispatch_id.in_(dispatch_ids),
                    nodes.c.cancel_requested.is_(True),
                    nodes.c.status.not_in(TERMINAL_VALUES),
                )
            )
        )
    )


def set_sub_dispatch(conn: Connection, dispatch_id: str, node_id: int, sub_id: str) -> None:
    """Record the sub-dispatch a sublattice node runs."""
    conn.execute(
        update(nodes)
        .where(and_(nodes.c.dispatch_id == dispatch_id, nodes.c.node_id == node_id))
        .values(sub_dispatch_id=sub_id)
    )
