"""Redispatch with reuse: what a node computes, as a content key, and which outputs of an
earlier dispatch a new one takes instead of running the nodes again.

A node's content key is a SHA-256 over its kind and name, its function (the pickled bytes,
and for a function pickled by reference its code, defaults and closure too), its environment
steps, its executor and configuration, its timeout, and, for each of its inputs in order, the
edge and the parent's key; a parameter's key covers its kind and pickled value. Pickles are
compared after a round trip (:func:`canonical`). Equal keys, equal work:
a changed function, closure, default, option, executor or input changes the node's key and
every key downstream of it. A function whose pickle differs between runs (one that refers to
a set, whose order varies) is never reused: the safe side.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import time
import types
from collections import deque
from typing import Any

import cloudpickle

from .graph import KIND_PARAMETER, TransportGraph
from .status import Status
from .values import is_value_ref, value_ref_path


def _code_text(code: types.CodeType) -> str:
    """A code object's bytecode, names and constants (nested code included), the same for
    the same source however the object was made (``marshal`` output depends on sharing)."""
    consts = [_code_text(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    return repr((code.co_code, code.co_names, code.co_varnames, code.co_freevars, consts))


def _code_of(function: Any) -> bytes:
    """What a function pickled by reference hides: its code, defaults and closure values."""
    if isinstance(function, functools.partial):
        inner = _code_of(function.func)
        try:
            return inner + cloudpickle.dumps((function.args, function.keywords))
        except Exception:
            return inner + repr((function.args, function.keywords)).encode()
    target = getattr(function, "__func__", function)  # a bound method's function
    code = getattr(target, "__code__", None)
    if code is None:  # a callable object: its class's __call__
        target = vars(type(function)).get("__call__")
        code = getattr(target, "__code__", None)
    parts = [_code_text(code).encode() if code is not None else b""]
    cells = [cell.cell_contents for cell in (getattr(target, "__closure__", None) or ())]
    extra = (getattr(target, "__defaults__", None), getattr(target, "__kwdefaults__", None), cells)
    try:
        parts.append(cloudpickle.dumps(extra))
    except Exception:
        parts.append(repr(extra).encode())
    return b"".join(parts)


def canonical(pickled: bytes) -> bytes:
    """The pickle of what ``pickled`` unpickles to. A pickle's bytes depend on which of its
    objects happen to be shared (an interned name, say); after one round trip they no longer
    do, so the same function or value gives the same bytes whether it comes from the user's
    script or from a stored workflow. Plain data keeps its bytes through a round trip: only
    what cloudpickle pickled by value (functions, classes) needs one."""
    if b"cloudpickle" not in pickled:
        return pickled
    try:
        return cloudpickle.dumps(cloudpickle.loads(pickled))
    except Exception:
        return pickled


def _canonical_hooks(hooks: bytes) -> bytes:
    steps = pickle.loads(hooks)
    for step in (*steps.get("before", ()), *steps.get("after", ())):
        for name in ("function", "args", "kwargs"):
            if name in step:
                step[name] = canonical(step[name])
    return pickle.dumps(steps, protocol=pickle.HIGHEST_PROTOCOL)


def content_keys(graph: TransportGraph, rows: list[dict[str, Any]]) -> None:
    """Set ``content_key`` on each row of ``graph``'s nodes (``rows[i]`` is node ``i``, with
    its pickled ``function``, ``hooks``, ``executor``, ``executor_config`` and ``timeout``, a
    parameter's value in ``output``)."""
    digests: dict[tuple[int, int], bytes] = {}  # ids of a function's and hooks' pickles

    def function_digest(node_id: int) -> bytes:
        pickled, hooks = rows[node_id]["function"], rows[node_id].get("hooks")
        if (id(pickled), id(hooks)) not in digests:
            h = hashlib.sha256(canonical(pickled) if pickled else b"")
            h.update(_code_of(graph.nodes[node_id].function))
            h.update(_canonical_hooks(hooks) if hooks else b"")
            digests[id(pickled), id(hooks)] = h.digest()
        return digests[id(pickled), id(hooks)]

    inputs: dict[int, list[Any]] = {}
    children: dict[int, list[int]] = {}
    for edge in graph.edges:
        inputs.setdefault(edge.child, []).append(edge)
        children.setdefault(edge.parent, []).append(edge.child)
    waiting = {node.node_id: len(inputs.get(node.node_id, ())) for node in graph.nodes}
    ready = deque(node_id for node_id, count in waiting.items() if count == 0)
    keys: dict[int, str] = {}
    while ready:
        node_id = ready.popleft()
        node, row = graph.nodes[node_id], rows[node_id]
        if node.kind == KIND_PARAMETER:  # its value (its name may hold an object's address)
            h = hashlib.sha256(f"{node.kind}\0".encode())
            h.update(canonical(row["output"]) if row["output"] else b"")
        else:
            h = hashlib.sha256(f"{node.kind}\0{node.name}\0".encode())
            h.update(function_digest(node_id))
            config = json.dumps(row.get("executor_config"), sort_keys=True, default=str)
            h.update(f"\0{row.get('executor')}\0{config}\0{row.get('timeout')}\0".encode())
        for edge in inputs.get(node_id, ()):
            h.update(
                f"{edge.edge_name}\0{edge.param_type}\0{edge.arg_index}\0"
                f"{keys[edge.parent]}\0".encode()
            )
        keys[node_id] = row["content_key"] = h.hexdigest()
        for child in children.get(node_id, ()):
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)


REUSED_FIELDS = ("output", "output_repr", "stdout", "stderr")


def reuse_outputs(
    rows: list[dict[str, Any]], previous: list[Any], previous_dispatch_id: str
) -> int:
    """Mark the rows whose content key matches a COMPLETED node of ``previous`` (rows of the
    earlier dispatch's nodes) as COMPLETED with that node's output, which is never copied (a
    big one stays a reference to its file). A node whose output is missing is not reused. How
    many were. A reused node's start and end are the same moment, now: Covalent's mark of a
    node that did not run again."""
    now = time.time()
    done: dict[str, Any] = {}
    for old in previous:
        if old.status != Status.COMPLETED.value or old.content_key is None:
            continue
        if old.output is None:
            continue
        if is_value_ref(old.output) and not os.path.exists(value_ref_path(old.output)):
            continue
        done.setdefault(old.content_key, old)
    reused = 0
    for row in rows:  # every row gets every column: one executemany inserts them
        for name in (*REUSED_FIELDS, "started_at", "ended_at", "sub_dispatch_id", "reused_from"):
            row.setdefault(name, None)
    for row in rows:
        old = done.get(row.get("content_key") or "")
        if old is None or row["kind"] == KIND_PARAMETER:
            continue
        row.update({name: getattr(old, name) for name in REUSED_FIELDS})
        row["status"] = Status.COMPLETED.value
        row["started_at"] = row["ended_at"] = now
        row["sub_dispatch_id"] = old.sub_dispatch_id
        row["reused_from"] = old.reused_from or previous_dispatch_id
        reused += 1
    return reused
