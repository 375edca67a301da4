"""Jobs on resources: their handles, stored before a task can finish, and the registry.

A job is what an executor started for one or several (packed) nodes, known by its handle.
Cancelling one is :mod:`.cancel`'s work; :class:`JobState` holds where that cancel stands.
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..store import queries as q
from .recorder import NodeState

if TYPE_CHECKING:
    from ..sdk.base import Executor
    from ..store.writes import WriteBuffer
    from .executor_cache import ExecutorCache
    from .scheduling import LiveDispatch


class JobPhase(str, enum.Enum):
    """A job's state, as stored in ``jobs.state``."""

    ACTIVE = "active"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


@dataclass(eq=False)
class JobState:
    """A job on a resource (one or several packed nodes) and the cancel of it."""

    job_id: int
    executor: Executor
    handle: str
    metadata: dict[str, Any]
    members: list[tuple[LiveDispatch, NodeState]] = field(default_factory=list)
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    waiting: list[tuple[LiveDispatch, NodeState, dict[str, Any]]] = field(default_factory=list)

    @property
    def cancelling(self) -> bool:
        """True while a cancel of the job is under way and not confirmed."""
        return self.task is not None and not self.confirmed.is_set()


class JobRegistry:
    """Every job the dispatcher knows, and the cancels of them."""

    def __init__(self, writes: WriteBuffer, executors: ExecutorCache, owner: str) -> None:
        self.writes = writes
        self.executors = executors
        self.owner = owner
        self.jobs: dict[int, JobState] = {}
        self._by_handle: dict[tuple[str, str], asyncio.Future[int]] = {}
        self._keys: dict[int, tuple[str, str]] = {}  # job id -> its key in _by_handle

    @property
    def cancelling(self) -> bool:
        """True while any cancel is still being retried."""
        return any(job.cancelling for job in self.jobs.values())

    def get(self, node: NodeState) -> JobState | None:
        """The node's job, if it has one."""
        return self.jobs.get(node.job_id) if node.job_id is not None else None

    async def store_handle(self, run: LiveDispatch, node: NodeState, handle: str) -> None:
        """Store a job handle (durably where the job outlives this host)."""
        executor = await self.executors.get(node.executor, node.executor_config)
        key = (self.executors.key(node.executor, node.executor_config), handle)
        pending = self._by_handle.get(key)
        if pending is None:
            # Reserve the key first: packed tasks store the same handle at the same moment.
            pending = self._by_handle[key] = asyncio.get_running_loop().create_future()
            name, config = node.executor or "local", node.executor_config or {}

            def insert(conn: Any) -> int:
                # The node's own job id in the same commit: one commit stores the handle.
                return q.insert_job(conn, run.dispatch_id, name, config, handle, node.node_id)

            durable = executor.jobs_outlive_host  # see Executor.jobs_outlive_host
            try:
                job_id = await asyncio.shield(self.writes.execute(insert, durable=durable))
                pending.set_result(job_id)
                self._keys[job_id] = key
            except BaseException as exc:
                del self._by_handle[key]
                pending.set_exception(exc)
                raise
        else:
            # Another member of a packed job: its handle is stored, only the link is new.
            run.states.note(run.dispatch_id, node, job_id=await asyncio.shield(pending))
            await asyncio.shield(self.writes.flush())
        job_id = await asyncio.shield(pending)
        node.job_id = job_id
        self.attach(job_id, executor, handle, run, node)

    def attach(
        self, job_id: int, executor: Executor, handle: str, run: LiveDispatch, node: NodeState
    ) -> JobState:
        """The job's state, with ``node`` among its members."""
        job = self.jobs.get(job_id)
        if job is None:
            metadata = {"dispatch_id": run.dispatch_id, "node_id": node.node_id}
            job = self.jobs[job_id] = JobState(job_id, executor, handle, metadata)
        if (run, node) not in job.members:
            job.members.append((run, node))
        return job

    def mark_attached(self, job_id: int) -> None:
        """Record that this dispatcher now watches a job a dead one had started."""
        now = time.time()
        self.writes.execute(
            lambda conn: q.update_job(conn, job_id, attached_by=self.owner, attached_at=now)
        )

    def release(self, node: NodeState) -> None:
        """Forget a job once every node on it is settled and no cancel of it is running."""
        job = self.get(node)
        if job is None or (job.task is not None and not job.task.done()):
            return
        if all(member.settled for _, member in job.members):
            del self.jobs[job.job_id]
            key = self._keys.pop(job.job_id, None)
            if key is not None:
                self._by_handle.pop(key, None)
