"""Node and dispatch states, and the one place where statuses change.

Every status a node or a dispatch takes goes through :class:`StateRecorder`, which checks the
transition against the tables below (terminal statuses are sticky: whatever an executor
reports late, a CANCELLED node never becomes COMPLETED) and queues the write to the store.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..status import TERMINAL, CancelReason, Stage, Status
from ..store import queries as q

if TYPE_CHECKING:
    from ..sdk.base import Batch, TaskContext
    from ..store.writes import WriteBuffer
    from .scheduling import LiveDispatch

logger = logging.getLogger(__name__)

# The only status changes a node may make.
NODE_TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.NEW_OBJECT: frozenset({Status.RUNNING, Status.CANCELLED, Status.FAILED}),
    Status.RUNNING: frozenset(
        {Status.CANCELLING, Status.COMPLETED, Status.FAILED, Status.CANCELLED}
    ),
    Status.CANCELLING: frozenset({Status.CANCELLED}),
}

# The only status changes a dispatch may make.
DISPATCH_TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.NEW_OBJECT: frozenset({Status.RUNNING, Status.FAILED, Status.CANCELLED}),
    Status.RUNNING: frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED}),
}


class CancelPhase(enum.Enum):
    """How far a node's cancel has come."""

    NONE = "none"
    """No cancel was requested."""
    REQUESTED = "requested"
    """The durable flag is set; the node has not been acted on yet (it starts cancelled)."""
    APPLIED = "applied"
    """The node's stages are being interrupted and its job, if any, stopped."""
    UNCONFIRMED = "unconfirmed"
    """The node is CANCELLING: its executor's cancel failed and is retried in the background."""


# The only changes a node's cancel phase may make (made by :mod:`.cancel` alone).
CANCEL_TRANSITIONS: dict[CancelPhase, frozenset[CancelPhase]] = {
    CancelPhase.NONE: frozenset({CancelPhase.APPLIED}),
    CancelPhase.REQUESTED: frozenset({CancelPhase.APPLIED}),
    CancelPhase.APPLIED: frozenset({CancelPhase.UNCONFIRMED}),
    CancelPhase.UNCONFIRMED: frozenset({CancelPhase.APPLIED}),
}


@dataclass(eq=False, slots=True)
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
    hooks: bytes | None
    output: bytes | None
    cancel_reason: str | None
    sub_dispatch_id: str | None
    job_id: int | None
    stage: str | None = None
    error: str | None = None
    job_handle: str | None = None
    """The stored handle of a job a previous dispatcher started (for re-attaching to it)."""
    started_at: float | None = None
    phase: CancelPhase = CancelPhase.NONE
    inputs: list[Any] = field(default_factory=list)  # edge rows into this node
    children: list[int] = field(default_factory=list)
    waiting: int = 0
    released: bool = False
    """Its children were told its output (at COMPLETED, or earlier: once the output is known
    and only cleanup is left)."""
    queued: bool = False
    """Admitted to its executor's capacity, waiting for a slot (no task yet)."""
    task: asyncio.Task[None] | None = None
    ctx: TaskContext | None = None
    batch: Batch | None = None
    """The nodes admitted with this one to one slot of its executor, to run as one pack."""

    @property
    def cancel_requested(self) -> bool:
        """True once a cancel (or timeout) was requested for the node."""
        return self.phase is not CancelPhase.NONE

    @property
    def timed_out(self) -> bool:
        """True if the node was cancelled because it ran past its ``timeout=``."""
        return self.cancel_reason == CancelReason.TIMEOUT.value

    @property
    def settled(self) -> bool:
        """Terminal, or CANCELLING with a cancel the dispatcher keeps retrying in the background."""
        return self.status in TERMINAL or (
            self.status is Status.CANCELLING and self.phase is CancelPhase.UNCONFIRMED
        )


class StateRecorder:
    """Changes statuses (checked against the transition tables) and records them."""

    def __init__(self, writes: WriteBuffer) -> None:
        self.writes = writes

    def node(self, dispatch_id: str, node: NodeState, status: Status, **values: Any) -> bool:
        """Move ``node`` to ``status`` if allowed; queue the write and return True."""
        if status is not node.status and status not in NODE_TRANSITIONS.get(node.status, ()):
            logger.debug(
                "dispatch %s node %s: ignored %s -> %s",
                dispatch_id,
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
        self.writes.update_node(dispatch_id, node.node_id, status=status.value, **values)
        return True

    def cancel_pending(self, dispatch_id: str, nodes: list[NodeState], reason: str) -> None:
        """Move nodes that never started to CANCELLED (each keeps a reason it had, in memory or
        in the store, else ``reason``), written with one statement per few hundred nodes."""
        now = time.time()
        groups: dict[str, list[int]] = {}
        for node in nodes:
            if node.status is not Status.NEW_OBJECT:
                continue
            node.status = Status.CANCELLED
            node.cancel_reason = node.cancel_reason or reason
            groups.setdefault(node.cancel_reason, []).append(node.node_id)
        for why, node_ids in groups.items():
            self.writes.update_nodes(
                dispatch_id,
                node_ids,
                status=Status.CANCELLED.value,
                cancel_requested=True,
                cancel_reason=q.reason_unless_set(why),
                cancel_stage=None,
                ended_at=now,
            )

    def stage(self, dispatch_id: str, node: NodeState, stage: Stage) -> None:
        """Record the stage a node reached."""
        node.stage = stage.value
        self.writes.update_node(dispatch_id, node.node_id, stage=stage.value)

    def cancel_flag(self, dispatch_id: str, node: NodeState) -> None:
        """Record durably that the node is to be cancelled, and why."""
        self.writes.update_node(
            dispatch_id, node.node_id, cancel_requested=True, cancel_reason=node.cancel_reason
        )

    def note(self, dispatch_id: str, node: NodeState, **values: Any) -> None:
        """Record values of a node that do not change its status (an error, a job id)."""
        self.writes.update_node(dispatch_id, node.node_id, **values)

    async def flush(self, *, soon: bool = False) -> None:
        """Return once every change recorded so far is in the store (``soon``: with the next
        commit, in at most a few milliseconds)."""
        await self.writes.flush(soon=soon)

    async def dispatch(self, run: LiveDispatch, status: Status, **values: Any) -> bool:
        """Move a dispatch to ``status`` if allowed, record it, and return True."""
        current = run.status
        if status is not current and status not in DISPATCH_TRANSITIONS.get(current, ()):
            logger.warning("dispatch %s: refused %s -> %s", run.dispatch_id, current, status)
            return False
        now = time.time()
        if status is Status.RUNNING:
            values.setdefault("started_at", now)
        if status in TERMINAL:
            values.setdefault("ended_at", now)
        dispatch_id = run.dispatch_id
        await self.writes.execute(
            lambda conn: q.update_dispatch(conn, dispatch_id, status, **values)
        )
        run.status = status
        return True

    async def fail_dispatch(self, dispatch_id: str, error: str) -> None:
        """End a dispatch that could not run FAILED, and every unfinished node of it with it."""
        await self.writes.execute(lambda conn: q.fail_dispatch(conn, dispatch_id, error))
