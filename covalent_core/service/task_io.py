"""What a node's task is given and what it gives back: its arguments (its parents'
outputs), its task context with the payload its executor sends, and its outcome's values."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..graph import PARAM_ARG, PARAM_WAIT
from ..sdk.base import TaskContext
from ..serialize import task_payload
from ..status import Status
from ..values import is_value_ref, read_value
from .interrupt import CancelFlag

if TYPE_CHECKING:
    from .recorder import NodeState
    from .scheduling import LiveDispatch

HandleRecorder = Callable[[TaskContext, str], Awaitable[None]]


def inputs_of(run: LiveDispatch, node: NodeState) -> tuple[list[bytes], dict[str, bytes]]:
    """The node's arguments, as the pickled outputs of its parents."""
    positional: dict[int, bytes] = {}
    keywords: dict[str, bytes] = {}
    for edge in node.inputs:
        if edge.param_type == PARAM_WAIT:
            continue
        output = run.nodes[edge.parent].output
        assert output is not None, f"input {edge.parent} of {node.node_id} has no output"
        if edge.param_type == PARAM_ARG:
            positional[edge.arg_index] = output
        else:
            keywords[edge.edge_name] = output
    return [positional[i] for i in sorted(positional)], keywords


def outcome_values(ctx: TaskContext) -> tuple[Status, dict[str, Any]]:
    """How the node ends, from the outcome its executor fetched."""
    outcome = ctx.outcome
    if outcome is None:
        return Status.FAILED, {
            "error": f"executor {ctx.executor_name!r} fetched no outcome for this task "
            "(its fetch stage must set task.outcome)"
        }
    values: dict[str, Any] = {"stdout": outcome.stdout, "stderr": outcome.stderr}
    if outcome.ok:
        values["output"] = outcome.output
        values["output_repr"] = outcome.output_repr
        return Status.COMPLETED, values
    values["error"] = outcome.error
    values["traceback"] = outcome.traceback
    if outcome.traceback and not is_value_ref((outcome.stderr or "").encode()[:64]):
        # As Covalent does: the failed task's traceback ends its stderr (unless that is big
        # and kept in a file).
        values["stderr"] = (outcome.stderr or "") + outcome.traceback
    return Status.FAILED, values


def dispatching_python(environment: dict[str, Any] | None) -> str | None:
    """The interpreter of the process that dispatched, if that ran on this host."""
    environment = environment or {}
    return environment.get("python") if environment.get("host") == socket.gethostname() else None


def task_context(
    run: LiveDispatch, node: NodeState, values_dir: Path, record: HandleRecorder
) -> TaskContext:
    """The task context of a node: its ids, its cancel flag, and how to store its handle
    (``record``) and make its payload (big values of local tasks stay in ``values_dir``)."""
    args, kwargs = inputs_of(run, node)
    task = {"dispatch_id": run.dispatch_id, "node_id": node.node_id}
    environment = {**(run.environment or {}), "task": task}
    if node.hooks is not None:
        environment["hooks"] = node.hooks

    def payload(override: dict[str, Any] | None) -> bytes:
        merged = {**environment, **(override or {})}
        if merged.pop("local", False):
            if run.environment_note:
                run.states.note(run.dispatch_id, node, note=run.environment_note)
            # Big arguments are read from their files, a big output written to one, by the
            # task itself: the value never passes through this process.
            merged["values_dir"] = str(values_dir)  # made by the task if it writes there
            return task_payload(node.function, args, kwargs, merged)
        merged.pop("variables", None)  # another machine keeps its own environment
        inline = [read_value(a) for a in args]
        return task_payload(
            node.function, inline, {k: read_value(v) for k, v in kwargs.items()}, merged
        )

    ctx = TaskContext(
        dispatch_id=run.dispatch_id,
        node_id=node.node_id,
        name=node.name,
        executor_name=node.executor or "local",
        cancelled=CancelFlag(),
        handle_recorder=record,
        payload_factory=payload,
        batch=node.batch,
        python=dispatching_python(run.environment),
    )
    if node.cancel_requested:
        ctx.cancelled.set()
    return ctx
