"""One dispatch being run: the nodes' states, readiness, and every status transition."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..executors.base import TaskContext
from ..graph import KIND_PARAMETER, KIND_POSTPROCESS
from ..status import TERMINAL, CancelReason, Stage, Status

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

logger = logging.getLogger(__name__)

# The only status changes a node may make (terminal statuses are sticky).
ALLOWED = {
    Status.NEW_OBJECT: {Status.RUNNING, Status.CANCELLED, Status.FAILED},
    Status.RUNNING: {Status.CANCELLING, Status.COMPLETED, Status.FAILED, Status.CANCELLED},
    Status.CANCELLING: {Status.CANCELLED},
}


@dataclass(eq=False)
class NodeState:
    """What the dispatcher knows about one node while the dispatch runs."""

    node_id: int
    name: str
    kind: str
    status: Status
    executor: str | None
    executor_config: dict[str, Any] | None
    timeout: float | None
    function: bytes | None
    output: bytes | None
    cancel_requested: bool
    cancel_reason: str | None
    sub_dispatch_id: str | None
    job_id: int | None
    stage: str | None = None
    error: str | None = None
    inputs: list[Any] = field(default_factory=list)  # edge rows into this node
    children: list[int] = field(default_factory=list)
    waiting: int = 0
    task: asyncio.Task[None] | None = None
    ctx: TaskContext | None = None
    cancel_unconfirmed: bool = False
    cancel_applied: bool = False
    timed_out: bool = False

    @property
    def settled(self) -> bool:
        """Terminal, or CANCELLING with a cancel the dispatcher keeps retrying in the background."""
        return self.status in TERMINAL or (
            self.status is Status.CANCELLING and self.cancel_unconfirmed
        )


class DispatchRun:
    """Runs the nodes of one dispatch as their inputs become ready."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        dispatch_id: str,
        name: str,
        environment: dict[str, Any],
        nodes: dict[int, NodeState],
        parent: tuple[DispatchRun, int] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.dispatch_id = dispatch_id
        self.name = name
        self.environment = environment
        self.nodes = nodes
        self.parent = parent
        self.finished: asyncio.Future[Status] = asyncio.get_running_loop().create_future()
        self.sub_runs: dict[int, DispatchRun] = {}
        self.cancel_all_reason: str | None = None

    # -- the one place where node statuses change ---------------------------------------

    def set_status(self, node: NodeState, status: Status, **values: Any) -> bool:
        """Move ``node`` to ``status`` if allowed; record it (batched) and return True."""
        if status is not node.status and status not in ALLOWED.get(node.status, set()):
            logger.debug(
                "dispatch %s node %s: ignored %s -> %s",
                self.dispatch_id,
                node.node_id,
                node.status,
                status,
            )
            return False
        node.status = status
        if "error" in values:
            node.error = values["error"]
        now = time.time()
        if status is Status.RUNNING:
            values.setdefault("started_at", now)
        if status in TERMINAL:
            values.setdefault("ended_at", now)
        self.dispatcher.writes.update_node(
            self.dispatch_id, node.node_id, status=status.value, **values
        )
        if status in TERMINAL:
            self._on_terminal(node)
        return True

    def set_stage(self, node: NodeState, stage: Stage) -> None:
        """Record the stage a node reached."""
        node.stage = stage.value
        self.dispatcher.writes.update_node(self.dispatch_id, node.node_id, stage=stage.value)

    # -- scheduling ---------------------------------------------------------------------

    def start(self) -> None:
        """Start every node whose inputs are ready; settle what was already cancelled."""
        for node in self.nodes.values():
            if node.kind == KIND_PARAMETER and node.status is Status.NEW_OBJECT:
                self.set_status(node, Status.COMPLETED)
        for node in list(self.nodes.values()):
            if node.status is Status.COMPLETED:
                continue
            node.waiting = sum(
                1 for e in node.inputs if self.nodes[e.parent].status is not Status.COMPLETED
            )
        for node in list(self.nodes.values()):
            if node.status is Status.NEW_OBJECT and node.cancel_requested:
                self.cancel_node(node, node.cancel_reason or CancelReason.USER.value)
        for node in list(self.nodes.values()):
            if node.status is Status.NEW_OBJECT and node.waiting == 0:
                self._launch(node)
        self._check_finished()

    def _launch(self, node: NodeState) -> None:
        if node.task is not None or node.status is not Status.NEW_OBJECT:
            return
        if node.cancel_requested:
            self.cancel_node(node, node.cancel_reason or CancelReason.USER.value)
            return
        from .pipeline import run_node

        node.task = asyncio.create_task(run_node(self, node), name=f"node-{node.node_id}")

    def _on_terminal(self, node: NodeState) -> None:
        if node.status is Status.COMPLETED:
            for child_id in node.children:
                child = self.nodes[child_id]
                child.waiting -= 1
                if child.waiting == 0 and child.status is Status.NEW_OBJECT:
                    self._launch(child)
        elif node.status in (Status.FAILED, Status.CANCELLED):
            reason = (
                CancelReason.UPSTREAM_FAILED
                if node.status is Status.FAILED
                else CancelReason.UPSTREAM_CANCELLED
            )
            for child_id in node.children:
                child = self.nodes[child_id]
                if child.status is Status.NEW_OBJECT and child.task is None:
                    self.cancel_node(child, child.cancel_reason or reason.value)
        self._check_finished()

    # -- cancellation -------------------------------------------------------------------

    def cancel_node(self, node: NodeState, reason: str, *, persist: bool = False) -> None:
        """Cancel one node: at once if it never started, else through its running stages."""
        if node.status in TERMINAL or node.cancel_applied:
            return
        node.cancel_applied = True
        first = not node.cancel_requested
        node.cancel_requested = True
        node.cancel_reason = node.cancel_reason or reason
        if persist and first:
            self.dispatcher.writes.update_node(
                self.dispatch_id,
                node.node_id,
                cancel_requested=True,
                cancel_reason=node.cancel_reason,
            )
        if node.task is None:
            self.set_status(
                node,
                Status.CANCELLED,
                cancel_requested=True,
                cancel_reason=node.cancel_reason,
                cancel_stage=None,
            )
            return
        if node.ctx is not None:
            node.ctx.cancelled.set()
        sub = self.sub_runs.get(node.node_id)
        if sub is not None:
            sub.cancel_all(CancelReason.PARENT_SUBLATTICE_CANCELLED.value)
        if node.job_id is not None:
            self.dispatcher.cancel_packed(self, node)

    def cancel_all(self, reason: str) -> None:
        """Cancel every unfinished node (a sublattice whose node was cancelled)."""
        self.cancel_all_reason = reason
        for node in list(self.nodes.values()):
            if node.status not in TERMINAL:
                self.cancel_node(node, reason, persist=True)

    # -- completion ---------------------------------------------------------------------

    def _check_finished(self) -> None:
        if self.finished.done():
            return
        if all(n.settled for n in self.nodes.values()):
            self.finished.set_result(Status.COMPLETED)

    def result(self) -> bytes | None:
        """The dispatch's result: the output of its post-processing node."""
        for node in self.nodes.values():
            if node.kind == KIND_POSTPROCESS:
                return node.output
        return None

    def failed_nodes(self) -> list[NodeState]:
        """The FAILED nodes in id order; their errors become the dispatch's."""
        return [n for n in self.nodes.values() if n.status is Status.FAILED]
