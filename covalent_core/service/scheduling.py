"""One dispatch being run: which nodes are ready, launching them, cancels, and completion."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..graph import KIND_PARAMETER, KIND_POSTPROCESS
from ..status import TERMINAL, CancelReason, Status
from .recorder import NodeState, StateRecorder

if TYPE_CHECKING:
    from ..sdk.base import Batch
    from .cancel import Cancels
    from .executor_cache import Capacity

logger = logging.getLogger(__name__)

Launch = Callable[["LiveDispatch", NodeState], Coroutine[Any, Any, None]]
CapacityOf = Callable[[NodeState], "Capacity | None"]


class LiveDispatch:
    """Runs the nodes of one dispatch as their inputs become ready.

    ``launch(run, node)`` is the coroutine that takes a node through its stages, started once
    the node's executor has a slot for it (``capacity_of(node)``; None: no limit); its
    cancels go through ``cancels``. Statuses change only through ``states``.
    """

    def __init__(
        self,
        dispatch_id: str,
        name: str,
        environment: dict[str, Any],
        nodes: dict[int, NodeState],
        *,
        states: StateRecorder,
        cancels: Cancels,
        launch: Launch,
        capacity_of: CapacityOf | None = None,
        parent: tuple[LiveDispatch, int] | None = None,
    ) -> None:
        self.dispatch_id = dispatch_id
        self.name = name
        self.environment = environment
        self.nodes = nodes
        self.states = states
        self.cancels = cancels
        self.launch = launch
        self.capacity_of = capacity_of
        self.parent = parent
        self.status = Status.NEW_OBJECT
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sub_runs: dict[int, LiveDispatch] = {}
        self.cancel_all_reason: str | None = None
        self.deadline_at: float | None = None
        """When the service cancels what is left of it (a top-level dispatch's deadline)."""
        self.environment_note: str | None = None
        """Said on each local task's node when its environment is not the dispatching
        process's (another host's service took the dispatch over)."""
        # Nodes not yet settled: the dispatch ends when none is left (no scan per event).
        self._unsettled = {n.node_id for n in nodes.values() if not n.settled}
        # Clients waiting for nodes to end (``cancel(wait=True)``): the ids still to end.
        self._end_waiters: list[tuple[set[int], asyncio.Future[None]]] = []

    @property
    def root(self) -> LiveDispatch:
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
            self.on_terminal(node)
        return True

    # -- scheduling ---------------------------------------------------------------------

    def start(self) -> None:
        """Start every node whose inputs are ready; settle what was already cancelled; resume
        the nodes a dead dispatcher had started."""
        now = time.time()
        for node in self.nodes.values():
            if node.kind == KIND_PARAMETER and node.status is Status.NEW_OBJECT:
                # A value, not a task: it starts and ends at once (Covalent's timestamps).
                self.set_status(node, Status.COMPLETED, started_at=now, ended_at=now)
        for node in self.nodes.values():
            if node.status is not Status.COMPLETED:
                node.waiting = sum(
                    1 for e in node.inputs if self.nodes[e.parent].status is not Status.COMPLETED
                )
        if self.cancel_all_reason:  # cancelled whole before it started (or while no one ran it)
            self.cancels.cancel_all(self, self.cancel_all_reason)
        else:
            flagged = [n for n in self.nodes.values() if n.cancel_requested]
            self.cancels.cancel_pending(self, flagged, CancelReason.USER.value)
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
            self.cancels.cancel_node(self, node, node.cancel_reason or CancelReason.USER.value)
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

    def on_terminal(self, node: NodeState) -> None:
        """React to a node's terminal status: release or cancel its children, and check
        whether the dispatch is over."""
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
                    self.cancels.cancel_node(self, child, child.cancel_reason or reason.value)
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
