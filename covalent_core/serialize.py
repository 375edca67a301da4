"""Turning a built graph into store records, and task payloads out of stored bytes."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import linecache
import os
import pickle
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ._workflow import Lattice
from ._workflow.deps import TaskEnvironment
from .errors import SerializationError
from .graph import KIND_PARAMETER, MAX_NAME, PARAMETER_PREFIX, Node, TransportGraph
from .plugins import executor_from_json, resolve_executor
from .reuse import content_keys
from .sdk.runner import task_payload as task_payload  # where the runner reads it
from .status import Status


@dataclass
class GraphRecords:
    """A graph as rows for the ``nodes`` and ``edges`` tables."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    lattice: bytes | None = None
    """The lattice itself (cloudpickle), for ``result.lattice``; only clients unpickle it."""
    inputs: bytes | None = None
    """``{"args": ..., "kwargs": ...}`` (cloudpickle), for ``result.inputs`` and redispatch."""
    sources: dict[str, str] = field(default_factory=dict)
    """The source text of the tasks' functions that no file holds (a notebook cell, code given
    to ``exec``), by the file name their code carries: tracebacks show their lines."""


def current_environment() -> dict[str, Any]:
    """What tasks of this process should see: its working directory and import path, and
    (for tasks on this machine) its environment variables, captured now."""
    return {
        "cwd": os.getcwd(),
        "sys_path": [p or os.getcwd() for p in sys.path],
        "python": sys.executable,
        "host": socket.gethostname(),
        "variables": dict(os.environ),
    }


def dumps(value: Any, what: str | Callable[[], str]) -> bytes:
    """cloudpickle ``value``; a failure says ``what`` could not be pickled and what to do."""
    try:
        return cloudpickle.dumps(value)
    except Exception as exc:
        what = what if isinstance(what, str) else what()
        raise SerializationError(
            f"{what} cannot be pickled ({type(exc).__name__}: {exc}). Pass something "
            "cloudpickle can serialize (not open files, locks, sockets or live connections); "
            "create such objects inside the electron instead."
        ) from exc


def graph_to_records(graph: TransportGraph) -> GraphRecords:
    """Pickle every function and parameter of ``graph``; nothing is stored if one fails."""
    records = GraphRecords()
    functions: dict[tuple[int, int], bytes] = {}
    steps: dict[int, bytes | None] = {}
    executors: dict[int, tuple[str, dict[str, Any]]] = {}
    now = time.time()
    for node in graph.nodes:
        row: dict[str, Any] = {
            "node_id": node.node_id,
            "name": node.name[:255],
            "kind": node.kind,
            "status": Status.NEW_OBJECT.value,
            "cancel_requested": False,
            "timeout": node.timeout,
            "function": None,
            "hooks": None,
            "output": None,
            "output_repr": None,
            "executor": None,
            "executor_config": None,
            "started_at": None,  # every row has every column: one executemany inserts them
            "ended_at": None,
        }
        if node.kind == KIND_PARAMETER:
            row["output"] = dumps(
                node.value, functools.partial(_parameter_label, graph, node.node_id)
            )
            text = node.name.removeprefix(PARAMETER_PREFIX)
            row["output_repr"] = text if len(node.name) < MAX_NAME else None
            row["status"] = Status.COMPLETED.value
            # A value, not a task: it starts and ends at once (Covalent's timestamps).
            row["started_at"] = row["ended_at"] = now
        else:
            hooks = node.hooks
            key = (id(node.function), id(hooks))
            if key not in functions:
                functions[key] = _function_bytes(node, hooks)
                _keep_source(node.function, records.sources)
            row["function"] = functions[key]
            if hooks is not None:
                if id(hooks) not in steps:
                    steps[id(hooks)] = _steps_bytes(node, hooks)
                row["hooks"] = steps[id(hooks)]
            ekey = id(node.executor)
            if ekey not in executors:
                executors[ekey] = resolve_executor(node.executor)
            row["executor"], row["executor_config"] = executors[ekey]
        records.nodes.append(row)
    content_keys(graph, records.nodes)
    for index, edge in enumerate(graph.edges):
        records.edges.append(
            {
                "edge_index": index,
                "parent": edge.parent,
                "child": edge.child,
                "param_type": edge.param_type,
                "edge_name": edge.edge_name,
                "arg_index": edge.arg_index,
            }
        )
    return records


def _keep_source(function: Any, sources: dict[str, str]) -> None:
    """Add the source of ``function``'s file to ``sources`` when no file holds it (linecache
    has it: IPython registers each cell there)."""
    code = getattr(inspect.unwrap(function), "__code__", None) if callable(function) else None
    name = getattr(code, "co_filename", None)
    if not name or name in sources or os.path.isfile(name):
        return
    lines = linecache.getlines(name)
    if lines and sum(map(len, lines)) <= MAX_SOURCE:
        sources[name] = "".join(lines)


MAX_SOURCE = 256 * 1024
"""Source text kept per file for tracebacks, at most (bytes)."""


def _function_bytes(node: Node, hooks: TaskEnvironment | None) -> bytes:
    """The node's function pickled; the code of its ``DepsModule`` modules included."""
    what = f"function of node {node.node_id} ({node.name})"
    if hooks is None or not hooks.modules:
        return dumps(node.function, what)
    with hooks.modules_by_value():
        return dumps(node.function, what)


def _steps_bytes(node: Node, hooks: TaskEnvironment) -> bytes | None:
    """The steps of the node's environment, as the runner reads them (None: no step)."""

    def named(value: Any, what: str) -> bytes:
        return dumps(value, f"{what} (environment of node {node.node_id}, {node.name})")

    with hooks.modules_by_value():
        steps = hooks.steps(named)
    if not steps["before"] and not steps["after"]:
        return None
    return pickle.dumps(steps, protocol=pickle.HIGHEST_PROTOCOL)


def lattice_records(
    lattice: Lattice, args: tuple[Any, ...], kwargs: dict[str, Any], default_executor: Any = None
) -> GraphRecords:
    """Build the lattice's graph for these arguments; records of it, the lattice and its inputs."""
    graph = lattice.build_graph(*args, _default_executor=default_executor, **kwargs)
    records = graph_to_records(graph)
    records.lattice = dumps(lattice, f"lattice {lattice.__name__!r}")
    records.inputs = dumps({"args": args, "kwargs": kwargs}, "the lattice's arguments")
    return records


def _parameter_label(graph: TransportGraph, node_id: int) -> str:
    """Words for where a parameter node came from, for an error about its value."""
    for edge in graph.edges:
        if edge.parent == node_id:
            child = graph.nodes[edge.child]
            return f"argument {edge.edge_name!r} of node {child.node_id} ({child.name})"
    return f"parameter node {node_id}"


def build_sublattice(
    sub: Lattice, json_parent_metadata: str, *args: Any, **kwargs: Any
) -> dict[str, Any]:
    """Build a sublattice's graph from its inputs; runs in a worker, where user code may run.

    Electrons of a sublattice without an executor of its own use its parent's default. The
    records come back as plain values (:func:`dataclasses.asdict`), which the dispatcher reads
    without running anything (:func:`covalent_core.plain_pickle.loads_plain`).
    """
    parent = json.loads(json_parent_metadata)
    default = executor_from_json(parent.get("executor"), parent.get("executor_data") or {})
    return dataclasses.asdict(lattice_records(sub, args, kwargs, default))


BUILD_SUBLATTICE = cloudpickle.dumps(build_sublattice)
