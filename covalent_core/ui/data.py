"""What the web UI shows, read from the store as JSON-ready data.

Every function takes an open read connection and returns plain dicts and lists; nothing here
unpickles a value (outputs and inputs are shown by the short ``repr`` stored with them) and
nothing sends a secret: executor options whose names say they are secret are masked.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection

from .._results_manager.result import NodeResult
from ..graph import KIND_PARAMETER, Edge, downstream
from ..status import TERMINAL, Status
from ..store import queries as q

MASK = "••••••"
SECRET_NAME = re.compile(r"pass(word)?|secret|token|credential|private|api_?key|access_?key", re.I)
"""Option names whose values never reach a browser (the store holds no declared secret
option at all: ``Executor.secret_options`` are not recorded)."""
LOG_LIMIT = 256 * 1024
"""The most of a stream the UI is sent: its end."""


def mask(value: Any, name: str = "") -> Any:
    """``value`` with every entry whose key looks secret replaced by :data:`MASK`."""
    if name and SECRET_NAME.search(name) and value not in (None, "", False):
        return MASK
    if isinstance(value, dict):
        return {k: mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def dispatch_list(
    conn: Connection,
    *,
    statuses: list[str] | None = None,
    name: str | None = None,
    prefix: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Top-level dispatches, newest first, with their progress (tasks done of all)."""
    rows = q.list_dispatches(conn, limit, statuses=statuses, name=name, prefix=prefix)
    counts = q.task_counts_of(conn, [r.dispatch_id for r in rows]) if rows else {}
    return [
        {
            "dispatch_id": r.dispatch_id,
            "name": r.name,
            "status": r.status,
            "created_at": r.created_at,
            "ended_at": r.ended_at,
            "done": counts[r.dispatch_id][0],
            "total": counts[r.dispatch_id][1],
            "redispatched_from": r.redispatched_from,
        }
        for r in rows
    ]


def node_state(row: Any) -> dict[str, Any]:
    """What changes about a node while it runs: what live updates send."""
    return {
        "id": row.node_id,
        "status": row.status,
        "stage": row.stage,
        "cancel_reason": row.cancel_reason,
        "sub_dispatch_id": row.sub_dispatch_id,
    }


def dispatch_graph(conn: Connection, dispatch_id: str) -> dict[str, Any]:
    """The dispatch and its transport graph: every node (id, name, kind, state) and edge."""
    row = q.get_dispatch(conn, dispatch_id)
    nodes = [
        {**node_state(n), "name": n.name, "kind": n.kind}
        for n in q.get_node_views(conn, dispatch_id)
    ]
    edges = [[e.parent, e.child, e.edge_name] for e in q.iter_edges(conn, dispatch_id)]
    return {**dispatch_state(row), "name": row.name, "nodes": nodes, "edges": edges}


def dispatch_state(row: Any) -> dict[str, Any]:
    """The dispatch's own changing fields."""
    return {
        "dispatch_id": row.dispatch_id,
        "status": row.status,
        "error": row.error,
        "created_at": row.created_at,
        "ended_at": row.ended_at,
        "parent_dispatch_id": row.parent_dispatch_id,
        "redispatched_from": row.redispatched_from,
        "deadline_at": row.deadline_at,
    }


def node_states(conn: Connection, dispatch_id: str) -> dict[int, dict[str, Any]]:
    """Every node's changing fields, by id (what live updates compare)."""
    return {n.node_id: node_state(n) for n in q.get_node_views(conn, dispatch_id)}


def node_detail(conn: Connection, dispatch_id: str, node_id: int) -> dict[str, Any]:
    """Everything the node panel shows: state, executor (masked), handle, times, inputs'
    and output's short reprs, error with traceback, and the end of its stdout and stderr."""
    rows = q.get_nodes(conn, dispatch_id, node_id=node_id)
    if not rows:
        raise LookupError(f"dispatch {dispatch_id} has no node {node_id}")
    node = NodeResult.from_row(rows[0])
    node.dispatch_id = dispatch_id
    # Read at every refresh of a running node's panel: its own edges and parents only.
    into = [Edge(*e) for e in q.get_edges(conn, dispatch_id, child=node_id)]
    parents = {e.parent for e in into}
    names = {n.node_id: n for n in q.get_node_views(conn, dispatch_id, sorted(parents))}
    inputs = []
    for edge in into:
        parent = names.get(edge.parent)
        inputs.append(
            {
                "name": edge.edge_name,
                "from": edge.parent,
                "from_name": parent.name if parent is not None else None,
                "parameter": parent is not None and parent.kind == KIND_PARAMETER,
                "repr": _short(parent.output_repr) if parent is not None else None,
            }
        )
    return {
        "id": node.node_id,
        "name": node.name,
        "kind": node.kind,
        "status": node.status.value,
        "stage": node.stage,
        "cancel_reason": node.cancel_reason,
        "cancel_stage": node.cancel_stage,
        "cancel_summary": node.cancel_summary,
        "executor": node.executor,
        "executor_config": mask(node.executor_config or {}),
        "job_handle": mask(node.job_handle),
        "started_at": node.started_at,
        "ended_at": node.ended_at,
        "inputs": inputs,
        "output_repr": _short(node.output_repr) if node.status is Status.COMPLETED else None,
        "error": node.error,
        "traceback": node.traceback,
        "sub_dispatch_id": node.sub_dispatch_id,
        "reused_from": node.reused_from,
        "stdout": _tail(node.stdout),
        "stderr": _tail(node.stderr),
    }


def cancel_preview(conn: Connection, dispatch_id: str, node_id: int) -> dict[str, Any]:
    """What cancelling ``node_id`` would cancel: it and everything downstream of it that
    has not finished (what :func:`covalent_core.cancel` computes); finished ones keep
    their results."""
    states = {n.node_id: n for n in q.get_node_states(conn, dispatch_id)}
    if node_id not in states:
        raise LookupError(f"dispatch {dispatch_id} has no node {node_id}")
    edges = [Edge(*e) for e in q.get_edges(conn, dispatch_id)]
    chosen = [node_id, *sorted(downstream(edges, [node_id]))]
    cancel, keep = [], []
    for n in chosen:
        entry = {"id": n, "name": states[n].name, "status": states[n].status}
        (keep if Status(states[n].status) in TERMINAL else cancel).append(entry)
    return {"cancel": cancel, "keep": keep}


def _short(text: str | None, limit: int = 2000) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + " …"


def _tail(text: str | None) -> str | None:
    if text is None or len(text) <= LOG_LIMIT:
        return text
    return "… (earlier output cut; `covalent-core logs` prints all of it)\n" + text[-LOG_LIMIT:]
