"""Jobs on resources and their cancellation: handles, packed jobs, retries, confirmation.

A job is what an executor started for one or several (packed) nodes, known by its handle.
Its handle is stored before the task can finish; cancelling any node of a packed job
cancels the job and every node on it. The executor's ``cancel`` is called until it confirms,
backing off; after a few failures the node is settled as CANCELLING (visible, with the
error) while the retries go on in the background.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..status import TERMINAL, CancelReason, Status
from ..store import queries as q
from .events import event
from .states import CancelPhase, NodeState

if TYPE_CHECKING:
    from ..executors.base import Executor, TaskContext
    from ..store.writes import WriteBuffer
    from .executor_cache import ExecutorCache
    from .scheduling import DispatchRun

logger = logging.getLogger(__name__)

CANCEL_BACKOFF_START = 0.25
CANCEL_BACKOFF_MAX = 30.0
CANCEL_ATTEMPTS_BEFORE_SETTLING = 3


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
    members: list[tuple[DispatchRun, NodeState]] = field(default_factory=list)
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    waiting: list[tuple[DispatchRun, NodeState, dict[str, Any]]] = field(default_factory=list)

    @property
    def cancelling(self) -> bool:
        """True while a cancel of the job is under way and not confirmed."""
        return self.task is not None and not self.confirmed.is_set()


class JobRegistry:
    """Every job the dispatcher knows, and the cancels of them."""

    def __init__(
        self, writes: WriteBuffer, hooks: Any, executors: ExecutorCache, owner: str
    ) -> None:
        self.writes = writes
        self.hooks = hooks
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

    async def store_handle(
        self, run: DispatchRun, node: NodeState, ctx: TaskContext, handle: str
    ) -> None:
        """Store a job handle durably; if a cancel already came, stop the job at once."""
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
        job = self.attach(job_id, executor, handle, run, node)
        if ctx.cancelled.is_set():
            self.start_cancel(job)
            self.cancel_packed(run, node)

    def attach(
        self, job_id: int, executor: Executor, handle: str, run: DispatchRun, node: NodeState
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

    def cancel_packed(self, run: DispatchRun, node: NodeState) -> None:
        """Cancel the other nodes that share this node's job."""
        job = self.get(node)
        if job is None:
            return
        for other_run, other in job.members:
            if other is not node and other.status not in TERMINAL:
                other_run.cancel_node(other, CancelReason.PACKED_JOB_CANCELLED.value, persist=True)

    def cancel(self, node: NodeState) -> JobState:
        """Start (once) stopping the node's job; the returned state tells when it is done."""
        job = self.jobs[node.job_id]  # type: ignore[index]
        self.start_cancel(job)
        return job

    def start_cancel(self, job: JobState) -> None:
        """Start the retrying cancel of ``job`` unless it is already under way."""
        if job.task is None:
            try:
                job.executor.cancel_at_once(job.metadata, job.handle)
            except Exception as exc:  # the retrying cancel below says what is wrong
                logger.info("cancel of job %s could not start at once: %s", job.job_id, exc)
            event("cancel_requested", job=job.job_id, executor=type(job.executor).__name__)
            job.task = asyncio.create_task(self._cancel_loop(job), name=f"cancel-job-{job.job_id}")

    async def settle_cancelled(
        self, run: DispatchRun, node: NodeState, values: dict[str, Any]
    ) -> None:
        """Record a cancelled node: CANCELLED, or CANCELLING while its job is not confirmed gone."""
        job = self.get(node)
        if job is not None and job.cancelling:
            run.set_status(node, Status.CANCELLING, **values)
            # Only once the cancel is confirmed, or has failed often enough to be retried
            # in the background, may the dispatch end around this node.
            await job.settled.wait()
            if not job.confirmed.is_set():
                node.phase = CancelPhase.UNCONFIRMED
                job.waiting.append((run, node, values))
                run.check_finished(node)
                return
        run.set_status(node, Status.CANCELLED, **values)

    async def _cancel_loop(self, job: JobState) -> None:
        """Call the executor's cancel until it confirms, backing off; never gives up."""
        delay = CANCEL_BACKOFF_START
        attempt = 0
        timeout = max(30.0, 3 * job.executor.cancel_bound)
        while True:
            attempt += 1
            error: str | None = None
            try:
                confirmed = await asyncio.wait_for(
                    self.hooks.covalent_cancel(
                        executor=job.executor, task_metadata=job.metadata, job_handle=job.handle
                    ),
                    timeout,
                )
                if not confirmed:
                    error = "the executor could not confirm that the job stopped"
            except asyncio.TimeoutError:
                error = f"cancel did not return within {timeout:g} s"
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            if error is None:
                await self._confirmed(job, attempt)
                return
            logger.warning("cancel of job %s failed (attempt %d): %s", job.job_id, attempt, error)
            event("cancel_retried", job=job.job_id, attempt=attempt, error=error, delay=delay)
            message = f"cancel attempt {attempt} failed: {error}; retrying in {delay:g} s"
            self._record_error(job, attempt, message)
            if attempt >= CANCEL_ATTEMPTS_BEFORE_SETTLING:
                job.settled.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, CANCEL_BACKOFF_MAX)

    def _record_error(self, job: JobState, attempt: int, message: str) -> None:
        self.writes.execute(
            lambda conn: q.update_job(
                conn,
                job.job_id,
                state=JobPhase.CANCELLING.value,
                cancel_attempts=attempt,
                cancel_error=message,
            )
        )
        for run, node in job.members:
            run.states.note(run.dispatch_id, node, error=message)

    async def _confirmed(self, job: JobState, attempt: int) -> None:
        event("cancel_confirmed", job=job.job_id, attempts=attempt)
        await self.writes.execute(
            lambda conn: q.update_job(
                conn,
                job.job_id,
                state=JobPhase.CANCELLED.value,
                cancel_attempts=attempt,
                cancel_error=None,
            )
        )
        job.confirmed.set()
        job.settled.set()
        for run, node, values in job.waiting:
            if attempt > 1:
                values["error"] = f"cancel confirmed after {attempt} attempts"
            node.phase = CancelPhase.APPLIED
            run.set_status(node, Status.CANCELLED, **values)
        job.waiting.clear()
        for _, member in job.members:
            self.release(member)
