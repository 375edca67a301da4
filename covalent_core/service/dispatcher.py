"""The dispatcher: runs dispatches from the store, owns executors and jobs, applies cancels."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
import psutil
from sqlalchemy import and_, insert, select, update

from .. import plugins
from ..errors import CovalentCoreError
from ..executors.base import Executor, TaskContext, TaskOutcome
from ..executors.local import LocalExecutor
from ..graph import KIND_SUBLATTICE
from ..process import START_TIME_TOLERANCE, is_dead
from ..result import failure_summary
from ..serialize import BUILD_SUBLATTICE, GraphRecords, task_payload
from ..status import TERMINAL, CancelReason, Status, dispatch_outcome
from ..store import Store
from ..store import queries as q
from ..store.schema import dispatches, jobs, nodes
from .run import DispatchRun, NodeState
from .writer import WriteBuffer

logger = logging.getLogger(__name__)

CANCEL_BACKOFF_START = 0.25
CANCEL_BACKOFF_MAX = 30.0
CANCEL_ATTEMPTS_BEFORE_SETTLING = 3


def owner_id() -> str:
    """This process as a dispatcher owner: host, PID and start time."""
    proc = psutil.Process()
    return f"{socket.gethostname()}:{proc.pid}:{proc.create_time():.3f}"


def owner_alive(owner: str | None) -> bool:
    """True unless ``owner`` is a dispatcher on this host that is no longer running."""
    if not owner:
        return False
    try:
        host, pid, started = owner.rsplit(":", 2)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True  # another host's dispatcher: it answers for its own dispatches
    # A killed dispatcher stays a zombie until its parent reaps it: that is dead too.
    if is_dead(int(pid)):
        return False
    try:
        started_at = psutil.Process(int(pid)).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    return abs(started_at - float(started)) < START_TIME_TOLERANCE + 0.01


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
    waiting_nodes: list[tuple[DispatchRun, NodeState, dict[str, Any]]] = field(default_factory=list)


class Dispatcher:
    """Runs dispatches claimed from the store; one per service process."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.owner = owner_id()
        self.registry = plugins.registry()
        self.writes = WriteBuffer(store)
        self.runs: dict[str, DispatchRun] = {}
        self.top_level: dict[str, asyncio.Task[None]] = {}
        self.jobs: dict[int, JobState] = {}
        self._job_keys: dict[tuple[str, str], asyncio.Future[int]] = {}
        self._executors: dict[str, Executor] = {}
        self._executor_locks: dict[str, asyncio.Lock] = {}
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    # -- bookkeeping --------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while any dispatch runs or any cancel is still being retried."""
        return bool(self.top_level) or any(
            not j.confirmed.is_set() and j.task for j in self.jobs.values()
        )

    @staticmethod
    def _key(name: str, config: dict[str, Any] | None) -> str:
        return f"{name}:{json.dumps(config or {}, sort_keys=True)}"

    def semaphore(self, node: NodeState) -> Any:
        """The concurrency bound of the node's executor (none for sublattice nodes)."""
        if node.kind == KIND_SUBLATTICE:
            return contextlib.nullcontext()
        key = self._key(node.executor or "local", node.executor_config)
        sem = self._semaphores.get(key)
        if sem is None:
            cls = self.registry.executor_class(node.executor or "local")
            sem = self._semaphores[key] = asyncio.Semaphore(
                max(1, cls.concurrency_for(node.executor_config or {}))
            )
        return sem

    async def executor_for(self, node: NodeState) -> Executor:
        """The executor for this node's name and configuration, instantiated on first use."""
        name = node.executor or "local"
        return await self._executor(name, node.executor_config or {})

    async def _executor(self, name: str, config: dict[str, Any]) -> Executor:
        key = self._key(name, config)
        if key in self._executors:
            return self._executors[key]
        lock = self._executor_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._executors:
                cls = self.registry.executor_class(name)
                executor = await self.registry.hook.covalent_instantiate(
                    executor_class=cls, config=dict(config)
                )
                self._executors[key] = executor
        return self._executors[key]

    async def close(self) -> None:
        """Close every executor and flush pending writes."""
        for executor in self._executors.values():
            with contextlib.suppress(Exception):
                await executor.close()
        self._executors.clear()
        await self.writes.flush()

    # -- starting and loading dispatches ------------------------------------------------

    async def poll_new(self) -> None:
        """Claim and start top-level dispatches nobody (alive) is running."""

        def find(conn: Any) -> list[Any]:
            return list(
                conn.execute(
                    select(dispatches.c.dispatch_id, dispatches.c.owner).where(
                        and_(
                            dispatches.c.parent_dispatch_id.is_(None),
                            dispatches.c.status.not_in(q.TERMINAL_VALUES),
                        )
                    )
                )
            )

        with self.store.read() as conn:
            rows = find(conn)
        for row in rows:
            if row.dispatch_id in self.top_level:
                continue
            if row.owner == self.owner or owner_alive(row.owner):
                continue
            if await self._claim(row.dispatch_id, row.owner):
                self.top_level[row.dispatch_id] = asyncio.create_task(
                    self._run_top_level(row.dispatch_id), name=f"dispatch-{row.dispatch_id}"
                )

    async def _claim(self, dispatch_id: str, previous: str | None) -> bool:
        def claim(conn: Any) -> bool:
            cond = (
                dispatches.c.owner.is_(None) if previous is None else dispatches.c.owner == previous
            )
            result = conn.execute(
                update(dispatches)
                .where(and_(dispatches.c.dispatch_id == dispatch_id, cond))
                .values(owner=self.owner)
            )
            return result.rowcount == 1

        return bool(await self.writes.execute(claim))

    async def _run_top_level(self, dispatch_id: str) -> None:
        try:
            run = await self._load(dispatch_id, parent=None)
            await self.execute_run(run)
        except Exception as exc:
            logger.exception("dispatch %s could not run", dispatch_id)
            await self._fail_dispatch(dispatch_id, f"the dispatcher could not run it: {exc!r}")
        finally:
            self.top_level.pop(dispatch_id, None)

    async def _fail_dispatch(self, dispatch_id: str, error: str) -> None:
        def op(conn: Any) -> None:
            # Nothing may look pending in a dispatch that ended.
            conn.execute(
                update(nodes)
                .where(
                    and_(
                        nodes.c.dispatch_id == dispatch_id,
                        nodes.c.status.not_in(q.TERMINAL_VALUES),
                    )
                )
                .values(status=Status.FAILED.value, error=error, ended_at=time.time())
            )
            conn.execute(
                update(dispatches)
                .where(dispatches.c.dispatch_id == dispatch_id)
                .values(status=Status.FAILED.value, error=error, ended_at=time.time())
            )

        await self.writes.execute(op)

    async def _load(self, dispatch_id: str, parent: tuple[DispatchRun, int] | None) -> DispatchRun:
        def read() -> tuple[Any, list[Any], list[Any]]:
            with self.store.read() as conn:
                return (
                    q.get_dispatch(conn, dispatch_id, with_result=True),
                    q.get_nodes(conn, dispatch_id, blobs=True),
                    q.get_edges(conn, dispatch_id),
                )

        row, node_rows, edge_rows = await asyncio.to_thread(read)
        states: dict[int, NodeState] = {}
        for r in node_rows:
            states[r.node_id] = NodeState(
                node_id=r.node_id,
                name=r.name,
                kind=r.kind,
                status=Status(r.status),
                executor=r.executor,
                executor_config=r.executor_config,
                timeout=r.timeout,
                function=r.function,
                output=r.output,
                cancel_requested=bool(r.cancel_requested),
                cancel_reason=r.cancel_reason,
                sub_dispatch_id=r.sub_dispatch_id,
                job_id=r.job_id,
                stage=r.stage,
            )
        for e in edge_rows:
            states[e.child].inputs.append(e)
            states[e.parent].children.append(e.child)
        run = DispatchRun(self, dispatch_id, row.name, row.environment, states, parent)
        if row.cancel_requested:
            run.cancel_all_reason = CancelReason.USER.value
        self.runs[dispatch_id] = run
        await self._recover_started_nodes(run, {r.node_id: r for r in node_rows})
        return run

    async def _recover_started_nodes(self, run: DispatchRun, rows: dict[int, Any]) -> None:
        """Nodes a dead dispatcher had started: stop their jobs so nothing is left running."""
        for node in run.nodes.values():
            if node.status not in (Status.RUNNING, Status.CANCELLING):
                continue
            if node.kind == KIND_SUBLATTICE and node.sub_dispatch_id:
                continue  # resumed: its sub-dispatch is loaded and run again
            row = rows[node.node_id]
            if row.job_handle:
                executor = await self._executor(
                    node.executor or "local", node.executor_config or {}
                )
                job = self._job_state(node.job_id, executor, row.job_handle, run, node)
                self._start_cancel(job)
                await job.settled.wait()
            if node.cancel_requested:
                node.status = Status.RUNNING
                run.set_status(node, Status.CANCELLED, cancel_stage=node.stage)
            else:
                node.status = Status.RUNNING
                run.set_status(
                    node,
                    Status.FAILED,
                    error=(
                        "the dispatcher running this task stopped before it finished; its "
                        "job was stopped so nothing is left running. Dispatch it again."
                    ),
                )

    async def execute_run(self, run: DispatchRun) -> tuple[Status, str | None, bytes | None]:
        """Run a dispatch to its end and record how it ended; returns (status, error, result)."""

        def mark_running(conn: Any) -> None:
            conn.execute(
                update(dispatches)
                .where(dispatches.c.dispatch_id == run.dispatch_id)
                .values(status=Status.RUNNING.value, started_at=time.time())
            )

        await self.writes.execute(mark_running)
        try:
            run.start()
            if run.cancel_all_reason:
                run.cancel_all(run.cancel_all_reason)
            await run.finished
            status = dispatch_outcome([n.status for n in run.nodes.values()])
            error: str | None = None
            result: bytes | None = None
            if status is Status.FAILED:
                error = failure_summary([(n.node_id, n.name, n.error) for n in run.failed_nodes()])
            elif status is Status.COMPLETED:
                result = run.result()
        finally:
            self.runs.pop(run.dispatch_id, None)
        ended = time.time()

        def finish(conn: Any) -> None:
            conn.execute(
                update(dispatches)
                .where(dispatches.c.dispatch_id == run.dispatch_id)
                .values(status=status.value, error=error, ended_at=ended)
            )

        await self.writes.execute(finish)
        await self.writes.flush()
        return status, error, result

    async def _run_internal(self, payload: bytes) -> TaskOutcome:
        """Run a built-in step (build a sublattice, assemble a result) on a local worker."""
        executor = await self._executor("local", LocalExecutor().config)
        assert isinstance(executor, LocalExecutor)
        ctx = TaskContext(dispatch_id="", node_id=-1, name="internal", executor_name="local")
        ctx.payload = payload
        await executor.run(ctx)
        await executor.fetch(ctx)
        assert ctx.outcome is not None
        return ctx.outcome

    # -- sublattices --------------------------------------------------------------------

    async def build_sublattice(
        self, run: DispatchRun, node: NodeState, args: list[bytes], kwargs: dict[str, bytes]
    ) -> GraphRecords:
        """Build a sublattice's graph from its inputs, in a worker."""
        outcome = await self._run_internal(
            task_payload(BUILD_SUBLATTICE, args, kwargs, run.environment)
        )
        if not outcome.ok or outcome.output is None:
            raise CovalentCoreError(
                f"building sublattice {node.name!r} failed: {outcome.error}\n"
                f"{outcome.traceback or ''}"
            )
        return cloudpickle.loads(outcome.output)

    async def create_sub_run(
        self, run: DispatchRun, node: NodeState, records: GraphRecords
    ) -> DispatchRun:
        """Store a sublattice's graph as a dispatch of its own and load it."""
        sub_id = str(uuid.uuid4())
        root = run.dispatch_id if run.parent is None else self._root_of(run)

        def op(conn: Any) -> None:
            q.insert_dispatch(
                conn,
                dispatch_id=sub_id,
                name=node.name.removeprefix(":sublattice:"),
                node_rows=records.nodes,
                edge_rows=records.edges,
                environment=run.environment,
                lattice=records.lattice,
                inputs=records.inputs,
                parent_dispatch_id=run.dispatch_id,
                parent_node_id=node.node_id,
                root_dispatch_id=root,
                owner=self.owner,
                status=Status.RUNNING,
            )
            conn.execute(
                update(nodes)
                .where(
                    and_(nodes.c.dispatch_id == run.dispatch_id, nodes.c.node_id == node.node_id)
                )
                .values(sub_dispatch_id=sub_id)
            )

        await self.writes.execute(op)
        node.sub_dispatch_id = sub_id
        return await self._load(sub_id, parent=(run, node.node_id))

    async def resume_sub_run(self, run: DispatchRun, node: NodeState) -> DispatchRun:
        """Load a sub-dispatch that a previous dispatcher had started."""
        assert node.sub_dispatch_id is not None
        return await self._load(node.sub_dispatch_id, parent=(run, node.node_id))

    def _root_of(self, run: DispatchRun) -> str:
        while run.parent is not None:
            run = run.parent[0]
        return run.dispatch_id

    # -- jobs and cancellation ----------------------------------------------------------

    async def store_job_handle(
        self, run: DispatchRun, node: NodeState, ctx: TaskContext, handle: str
    ) -> None:
        """Store a job handle durably; if a cancel already came, stop the job at once."""
        executor = await self.executor_for(node)
        exec_key = self._key(node.executor or "local", node.executor_config)
        key = (exec_key, handle)
        pending = self._job_keys.get(key)
        if pending is None:
            # Reserve the key first: packed tasks store the same handle at the same moment.
            pending = self._job_keys[key] = asyncio.get_running_loop().create_future()

            def op(conn: Any) -> int:
                result = conn.execute(
                    insert(jobs).values(
                        dispatch_id=run.dispatch_id,
                        executor=node.executor or "local",
                        executor_config=node.executor_config or {},
                        handle=handle,
                        created_at=time.time(),
                        state="active",
                        cancel_attempts=0,
                    )
                )
                return int(result.inserted_primary_key[0])

            try:
                pending.set_result(await asyncio.shield(self.writes.execute(op)))
            except BaseException as exc:
                del self._job_keys[key]
                pending.set_exception(exc)
                raise
        job_id = await asyncio.shield(pending)
        node.job_id = job_id
        self.writes.update_node(run.dispatch_id, node.node_id, job_id=job_id)
        await asyncio.shield(self.writes.flush())
        job = self._job_state(job_id, executor, handle, run, node)
        if ctx.cancelled.is_set():
            self._start_cancel(job)
            self.cancel_packed(run, node)

    def _job_state(
        self, job_id: int | None, executor: Executor, handle: str, run: DispatchRun, node: NodeState
    ) -> JobState:
        assert job_id is not None
        job = self.jobs.get(job_id)
        if job is None:
            job = self.jobs[job_id] = JobState(
                job_id=job_id,
                executor=executor,
                handle=handle,
                metadata={"dispatch_id": run.dispatch_id, "node_id": node.node_id},
            )
        if (run, node) not in job.members:
            job.members.append((run, node))
        return job

    def release_job(self, node: NodeState) -> None:
        """Forget a job once every node on it is settled and no cancel of it is running."""
        job = self.jobs.get(node.job_id) if node.job_id is not None else None
        if job is None or (job.task is not None and not job.task.done()):
            return
        if all(member.settled for _, member in job.members):
            del self.jobs[job.job_id]
            self._job_keys = {
                k: v
                for k, v in self._job_keys.items()
                if not (v.done() and not v.exception() and v.result() == job.job_id)
            }

    def cancel_packed(self, run: DispatchRun, node: NodeState) -> None:
        """Cancel the other nodes that share this node's job."""
        job = self.jobs.get(node.job_id) if node.job_id is not None else None
        if job is None:
            return
        for other_run, other in job.members:
            if other is not node and other.status not in TERMINAL:
                other_run.cancel_node(other, CancelReason.PACKED_JOB_CANCELLED.value, persist=True)

    def cancel_job(self, run: DispatchRun, node: NodeState) -> JobState:
        """Start (once) stopping the node's job; the returned state tells when it is done."""
        job = self.jobs[node.job_id]  # type: ignore[index]
        self._start_cancel(job)
        return job

    def _start_cancel(self, job: JobState) -> None:
        if job.task is None:
            job.task = asyncio.create_task(self._cancel_loop(job), name=f"cancel-job-{job.job_id}")

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
                    self.registry.hook.covalent_cancel(
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
                await self._job_cancelled(job, attempt)
                return
            logger.warning("cancel of job %s failed (attempt %d): %s", job.job_id, attempt, error)
            message = f"cancel attempt {attempt} failed: {error}; retrying in {delay:g} s"
            self._record_cancel_error(job, attempt, message)
            if attempt >= CANCEL_ATTEMPTS_BEFORE_SETTLING:
                job.settled.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, CANCEL_BACKOFF_MAX)

    def _record_cancel_error(self, job: JobState, attempt: int, message: str) -> None:
        def op(conn: Any) -> None:
            conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job.job_id)
                .values(state="cancelling", cancel_attempts=attempt, cancel_error=message)
            )

        self.writes.execute(op)
        for run, node in job.members:
            self.writes.update_node(run.dispatch_id, node.node_id, error=message)

    async def _job_cancelled(self, job: JobState, attempt: int) -> None:
        def op(conn: Any) -> None:
            conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job.job_id)
                .values(state="cancelled", cancel_attempts=attempt, cancel_error=None)
            )

        await self.writes.execute(op)
        job.confirmed.set()
        job.settled.set()
        for run, node, values in job.waiting_nodes:
            if attempt > 1:
                values["error"] = f"cancel confirmed after {attempt} attempts"
            node.cancel_unconfirmed = False
            run.set_status(node, Status.CANCELLED, **values)
        job.waiting_nodes.clear()
        for _, member in job.members:
            self.release_job(member)

    def time_out(self, run: DispatchRun, node: NodeState) -> None:
        """A node ran past its ``timeout=``: cancel it with reason timeout."""
        if node.status in TERMINAL:
            return
        node.timed_out = True
        run.cancel_node(node, CancelReason.TIMEOUT.value, persist=True)
        if node.cancel_reason != CancelReason.TIMEOUT.value:
            return
        self.writes.update_node(
            run.dispatch_id, node.node_id, error=f"timed out after {node.timeout:g} s; stopped"
        )

    async def apply_cancels(self, dispatch_ids: list[str] | None = None) -> int:
        """Read cancel flags from the store into the running dispatches; return how many."""
        ids = [i for i in (dispatch_ids or list(self.runs)) if i in self.runs]
        if not ids:
            return 0

        def read() -> list[Any]:
            with self.store.read() as conn:
                rows = list(
                    conn.execute(
                        select(nodes.c.dispatch_id, nodes.c.node_id, nodes.c.cancel_reason).where(
                            and_(
                                nodes.c.dispatch_id.in_(ids),
                                nodes.c.cancel_requested.is_(True),
                                nodes.c.status.not_in(q.TERMINAL_VALUES),
                            )
                        )
                    )
                )
                return rows

        rows = await asyncio.to_thread(read)
        count = 0
        for row in rows:
            run = self.runs.get(row.dispatch_id)
            if run is None:
                continue
            node = run.nodes.get(row.node_id)
            if node is None or node.status in TERMINAL:
                continue
            count += 1
            run.cancel_node(node, row.cancel_reason or CancelReason.USER.value)
        return count
