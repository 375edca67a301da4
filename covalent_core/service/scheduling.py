"""One dispatch being run: which nodes are ready, launching them, cancels, and completion."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..graph import KIND_PARAMETER, KIND_POSTPROCESS, KIND_SUBLATTICE
from ..status import TERMINAL, CancelReason, Stage, Status
from .states import CancelPhase, NodeState, StateRecorder

if TYPE_CHECKING:
    from ..executors.base import Batch
    from .executor_cache import Capacity
    from .jobs import JobRegistry

logger = logging.getLogger(__name__)

Launch = Callable[["DispatchRun", NodeState], Coroutine[Any, Any, None]]
CapacityOf = Callable[[NodeState], "Capacity | None"]


class DispatchRun:
    """Runs the nodes of one dispatch as their inputs become ready.

    ``launch(run, node)`` is the coroutine that takes a node through its stages, started once
    the node's executor has a slot for it (``capacity_of(node)``; None: no limit); ``jobs``
    stops the jobs of cancelled nodes. Statuses change only through ``states``.
    """

    def __init__(
        self,
        dispatch_id: str,
        name: str,
        environment: dict[str, Any],
        nodes: dict[int, NodeState],
        *,
        states: StateRecorder,
        jobs: JobRegistry,
        launch: Launch,
        capacity_of: CapacityOf | None = None,
        parent: tuple[DispatchRun, int] | None = None,
    ) -> None:
        self.dispatch_id = dispatch_id
        self.name = name
        self.environment = environment
        self.nodes = nodes
        self.states = states
        self.jobs = jobs
        self.launch = launch
        self.capacity_of = capacity_of
        self.parent = parent
        self.status = Status.NEW_OBJECT
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sub_runs: dict[int, DispatchRun] = {}
        self.cancel_all_reason: str | None = None
        self.environment_note: str | None = None
        """Said on each local task's node when its environment is not the dispatching
        process's (another host's service took the dispatch over)."""
        # Nodes not yet settled: the dispatch ends when none is left (no scan per event).
        self._unsettled = {n.node_id for n in nodes.values() if not n.settled}
        # Clients waiting for nodes to end (``cancel(wait=True)``): the ids still to end.
        self._end_waiters: list[tuple[set[int], asyncio.Future[None]]] = []

    @property
    def root(self) -> DispatchRun:
        """The top-level dispatch this one belongs to."""
        run = self
        while run.parent is not None:
            run = run.parent[0]
        return run

    # -- status changes, with what follows from them -------------------------------------

    def set_status(self, node: NodeState, status: Status, **values: Any) -> bool:
        """Change a node's status (if the transition is allowed) and react to it."""
        if not self.states.node(self.dispatch_id, node, status, **values):
            return False
        if status in TERMINAL:
            self._on_terminal(node)
        return True

    # -- scheduling ---------------------------------------------------------------------

    def start(self) -> None:
        """Start every node whose inputs are ready; settle what was already cancelled; resume
        the nodes a dead dispatcher had started."""
        for node in self.nodes.values():
            if node.kind == KIND_PARAMETER and node.status is Status.NEW_OBJECT:
                self.set_status(node, Status.COMPLETED)
        for node in self.nodes.values():
            if node.status is not Status.COMPLETED:
                node.waiting = sum(
                    1 for e in node.inputs if self.nodes[e.parent].status is not Status.COMPLETED
                )
        if self.cancel_all_reason:  # cancelled whole before it started (or while no one ran it)
            self.cancel_all(self.cancel_all_reason)
        else:
            flagged = [n for n in self.nodes.values() if n.cancel_requested]
            self._cancel_pending(flagged, CancelReason.USER.value)
        for node in list(self.nodes.values()):
            if node.status in (Status.RUNNING, Status.CANCELLING) and node.task is None:
                # Started by a dispatcher that died: resumed, whatever its cancel flag says
                # (a job of a cancelled node must still be stopped).
                node.task = asyncio.create_task(
                    self.launch(self, node), name=f"node-{node.node_id}-resumed"
                )
        for node in list(self.nodes.values()):
            if node.status is Status.NEW_OBJECT and node.waiting == 0:
                self._launch(node)
        self.check_finished()

    def _launch(self, node: NodeState) -> None:
        if node.task is not None or node.queued or node.status is not Status.NEW_OBJECT:
            return
        if node.cancel_requested:
            self.cancel_node(node, node.cancel_reason or CancelReason.USER.value)
            return
        capacity = self.capacity_of(node) if self.capacity_of is not None else None
        if capacity is None:
            self._start(node)
            return
        node.queued = True
        # Nodes of one dispatch may share a slot, as one pack; one with a timeout runs
        # alone (its time counts from its start, which a pack would delay).
        capacity.admit(
            lambda batch: self._start(node, batch), self.dispatch_id, node.timeout is not None
        )

    def _start(self, node: NodeState, batch: Batch | None = None) -> bool:
        """Start the node's stages (its slot, if it needs one, is taken; shared with the
        other nodes of ``batch``); False if it no longer needs to run (cancelled while it
        waited)."""
        node.queued = False
        if node.task is not None or node.status is not Status.NEW_OBJECT:
            return False
        node.batch = batch
        node.task = asyncio.create_task(self.launch(self, node), name=f"node-{node.node_id}")
        return True

    def _on_terminal(self, node: NodeState) -> None:
        if self._end_waiters:
            self._node_ended(node.node_id)
        if node.status is Status.COMPLETED:
            self.output_ready(node)
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
        self.check_finished(node)

    def output_ready(self, node: NodeState) -> None:
        """The node's output is known and will be its result: its children may start, while
        it is still being cleaned up (its status is COMPLETED once that is done)."""
        if node.released:
            return
        node.released = True
        for child_id in node.children:
            child = self.nodes[child_id]
            child.waiting -= 1
            if child.waiting == 0 and child.status is Status.NEW_OBJECT:
                self._launch(child)

    # -- cancellation -------------------------------------------------------------------

    def cancel_node(self, node: NodeState, reason: str, *, persist: bool = False) -> None:
        """Cancel one node: at once if it never started, else through its running stages."""
        if node.status in TERMINAL or node.phase in (CancelPhase.APPLIED, CancelPhase.UNCONFIRMED):
            return
        first = node.phase is CancelPhase.NONE
        node.phase = CancelPhase.APPLIED
        node.cancel_reason = node.cancel_reason or reason
        if persist and first:
            self.states.cancel_flag(self.dispatch_id, node)
        if node.task is None and node.status is not Status.NEW_OBJECT:
            # Started by a dispatcher that died, not resumed yet: its job is stopped when it
            # is (it resumes cancelled), never left running under a CANCELLED node.
            return
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
            self.jobs.cancel_packed(self, node)

    def stop_running(self, reason: str, node_ids: list[int] | None = None) -> None:
        """Begin stopping the running tasks (all, or those of ``node_ids``) at once, while
        their cancel is being stored (the rest of it, nodes that have not started, those
        downstream and sublattices, is applied once it is): a job is killed a commit sooner."""
        nodes = self.nodes.values() if node_ids is None else [self.nodes[i] for i in node_ids]
        for node in nodes:
            running = node.task is not None and node.status is Status.RUNNING
            if running and node.kind != KIND_SUBLATTICE:
                self.cancel_node(node, reason, persist=True)
                # Its job, if it may still run (past the run stage it has ended: the flag
                # stops the stage, as it would once stored), is cancelled before the commit.
                if node.stage == Stage.RUN.value and node.job_id in self.jobs.jobs:
                    self.jobs.cancel(node)

    def cancel_all(self, reason: str) -> None:
        """Cancel every unfinished node: those that never started at once and together (a
        graph of 100,000 waiting nodes is settled in one pass), the others one by one."""
        self.cancel_all_reason = reason
        pending = []
        for node in list(self.nodes.values()):
            if node.status in TERMINAL:
                continue
            if node.status is Status.NEW_OBJECT and node.task is None:
                pending.append(node)
            else:
                self.cancel_node(node, reason, persist=True)
        self._cancel_pending(pending, reason)

    def _cancel_pending(self, pending: list[NodeState], reason: str) -> None:
        """Settle ``pending`` nodes (never started, no task) CANCELLED, then what follows."""
        pending = [n for n in pending if n.status is Status.NEW_OBJECT and n.task is None]
        if not pending:
            return
        for node in pending:
            node.phase = CancelPhase.APPLIED
        self.states.cancel_pending(self.dispatch_id, pending, reason)
        for node in pending:
            self._on_terminal(node)

    # -- completion ---------------------------------------------------------------------

    def check_finished(self, node: NodeState | None = None) -> None:
        """Resolve ``finished`` once every node is settled (``node`` may just have been)."""
        if node is not None and node.settled:
            self._unsettled.discard(node.node_id)
        if not self._unsettled and not self.finished.done():
            self.finished.set_result(None)

    def nodes_ended(self, node_ids: set[int]) -> asyncio.Future[None]:
        """A future resolved once every node of ``node_ids`` has a terminal status."""
        future = asyncio.get_running_loop().create_future()
        pending = {i for i in node_ids if i in self.nodes and self.nodes[i].status not in TERMINAL}
        if pending:
            self._end_waiters.append((pending, future))
        else:
            future.set_result(None)
        return future

    def _node_ended(self, node_id: int) -> None:
        still = []
        for pending, future in self._end_waiters:
            pending.discard(node_id)
            if pending and not future.done():
                still.append((pending, future))
            elif not future.done():
                future.set_result(None)
        self._end_waiters = still

    def result(self) -> bytes | None:
        """The dispatch's result: the output of its post-processing node."""
        for node in self.nodes.values():
            if node.kind == KIND_POSTPROCESS:
                return node.output
        return None

    def failed_nodes(self) -> list[NodeState]:
        """The FAILED nodes in id order; their errors become the dispatch's."""
        return [n for n in self.nodes.values() if n.status is Status.FAILED]
