"""Cancel, from the request to the confirmation that every job it concerns is gone.

One :class:`Cancels` per dispatcher owns it all, and is the only writer of a node's cancel
phase (checked against :data:`~.states.CANCEL_TRANSITIONS`):

- **the request** (:meth:`Cancels.request`, the service's one ``cancel`` operation): the
  running tasks it concerns are stopped *before* it is stored when storing it cannot refuse
  it (their jobs die a commit sooner); then it is stored durably and applied;
- **applying** what is stored (:meth:`Cancels.apply_stored`: requests of other processes and
  hosts, and those stored while no service ran): nodes that never started are settled at
  once, together; running ones are interrupted in their stage, and their jobs stopped;
- **timeouts** (:meth:`Cancels.time_out`) and **packed jobs** (cancelling one node of a job
  shared by several cancels the job and all of them);
- **the job's cancel** (:meth:`Cancels.stop_job`): the executor's ``cancel`` is called until
  it confirms, backing off; after a few failures the node is settled CANCELLING (visible,
  with the error) while the retries go on in the background;
- **interrupting a stage**: :mod:`.interrupt`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

from ..cancel_requests import CancelReport, flag_in, request_cancel, task_id_list
from ..errors import CovalentCoreError
from ..graph import KIND_SUBLATTICE
from ..status import TERMINAL, CancelReason, Stage, Status
from ..store import queries as q
from .events import event
from .jobs import JobPhase, JobState
from .recorder import CANCEL_TRANSITIONS, CancelPhase, NodeState

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from ..sdk.base import TaskContext
    from ..store import Store
    from ..store.writes import WriteBuffer
    from .jobs import JobRegistry
    from .recorder import StateRecorder
    from .scheduling import LiveDispatch

logger = logging.getLogger(__name__)

CANCEL_BACKOFF_START = 0.25
CANCEL_BACKOFF_MAX = 30.0
CANCEL_ATTEMPTS_BEFORE_SETTLING = 3


class Cancels:
    """Every cancel of the dispatches one dispatcher runs (``runs``, by id)."""

    def __init__(
        self,
        store: Store,
        writes: WriteBuffer,
        states: StateRecorder,
        jobs: JobRegistry,
        hooks: Any,
        runs: dict[str, LiveDispatch],
    ) -> None:
        self.store = store
        self.writes = writes
        self.states = states
        self.jobs = jobs
        self.hooks = hooks
        self.runs = runs

    # -- the request --------------------------------------------------------------------

    async def request(
        self,
        dispatch_id: Any,
        task_ids: Any,
        take_over: Callable[[], Awaitable[None]],
        reason: str = CancelReason.USER.value,
    ) -> CancelReport:
        """Cancel a dispatch (``task_ids`` None) or some of its tasks: stop what may be stopped
        at once, store the request durably, and apply it (``take_over`` first claims
        dispatches no live service runs, one dispatched a moment ago, say). Raises what
        storing it raised (an unknown id, bad task ids, a full store), having stopped nothing.
        ``reason``: a user's request, or this service's (a dispatch's deadline)."""
        run = self.runs.get(dispatch_id) if isinstance(dispatch_id, str) else None
        if run is not None and self.writes.full is None:
            stoppable, node_ids = cannot_be_refused(task_ids, run.nodes)
            if stoppable:
                self.stop_running(run, reason, node_ids)
        report = await self._store(dispatch_id, task_ids, reason)
        ids = [report.dispatch_id, *report.sub_dispatches]
        if any(i not in self.runs for i in ids):
            await take_over()
        flagged = {report.dispatch_id: report.flagged_nodes} if report.flagged_nodes else None
        await self.apply_stored(ids, report.cancelled_whole, flagged)
        return report

    async def _store(self, dispatch_id: Any, task_ids: Any, reason: str) -> CancelReport:
        """Store a cancel request, on the store writer's connection (its cache is warm: a
        cancel is flagged in a fraction of a millisecond) unless the store is full (then in
        a thread, so that the request fails with the store's message)."""
        if self.writes.full is not None:
            return await asyncio.to_thread(request_cancel, dispatch_id, task_ids, reason)

        def flag(conn: Connection) -> CancelReport | Exception:
            try:
                return flag_in(conn, dispatch_id, task_ids, reason)
            except (CovalentCoreError, TypeError) as exc:  # raised before it wrote anything:
                return exc  # the writes batched with it are committed all the same

        outcome = await self.writes.execute(flag, durable=True)  # as a client's
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def stop_running(self, run: LiveDispatch, reason: str, node_ids: list[int] | None) -> None:
        """Begin stopping the running tasks (all, or those of ``node_ids``) at once, while
        their cancel is being stored (the rest of it, nodes that have not started, those
        downstream and sublattices, is applied once it is): a job is killed a commit sooner."""
        nodes = run.nodes.values() if node_ids is None else [run.nodes[i] for i in node_ids]
        for node in nodes:
            running = node.task is not None and node.status is Status.RUNNING
            if running and node.kind != KIND_SUBLATTICE:
                self.cancel_node(run, node, reason, persist=True)
                # Its job, if it may still run (past the run stage it has ended: the flag
                # stops the stage, as it would once stored), is cancelled before the commit.
                if node.stage == Stage.RUN.value and node.job_id in self.jobs.jobs:
                    self.stop_job(node)

    # -- applying it --------------------------------------------------------------------

    async def apply_stored(
        self,
        dispatch_ids: list[str] | None = None,
        whole: dict[str, str] | None = None,
        flagged: dict[str, dict[int, str]] | None = None,
    ) -> int:
        """Read cancel flags from the store into the running dispatches (None: all); return
        how many nodes were newly cancelled. A whole-dispatch cancel is read as one flag, not
        node by node. What this service has just stored itself is passed, not read again:
        ``whole`` ({dispatch id: reason}) and ``flagged`` ({dispatch id: {node id: reason}})."""
        told = whole or {}
        flagged = flagged or {}
        count = 0
        for dispatch_id, node_reasons in flagged.items():
            run = self.runs.get(dispatch_id)
            if run is None or dispatch_id in told or run.cancel_all_reason:
                continue
            for node_id, reason in node_reasons.items():
                node = run.nodes.get(node_id)
                if node is not None and node.status not in TERMINAL:
                    count += 1
                    self.cancel_node(run, node, reason)
        ids = [
            i
            for i in (dispatch_ids or list(self.runs))
            if i in self.runs and i not in told and i not in flagged
        ]
        ids = [i for i in ids if not self.runs[i].cancel_all_reason]

        def read() -> tuple[dict[str, str | None], list[Any]]:
            with self.store.read() as conn:
                whole = q.cancelled_dispatches(conn, ids)
                rest = [i for i in ids if i not in whole]
                return whole, (q.cancel_requests(conn, rest) if rest else [])

        stored, rows = await asyncio.to_thread(read) if ids else ({}, [])
        for dispatch_id, reason in {**stored, **told}.items():
            run = self.runs.get(dispatch_id)
            if run is not None and not run.cancel_all_reason:
                count += sum(1 for n in run.nodes.values() if n.status not in TERMINAL)
                self.cancel_all(run, reason or CancelReason.USER.value)
        for row in rows:
            run = self.runs.get(row.dispatch_id)
            node = run.nodes.get(row.node_id) if run is not None else None
            if run is None or node is None or node.status in TERMINAL:
                continue
            count += 1
            self.cancel_node(run, node, row.cancel_reason or CancelReason.USER.value)
        return count

    def cancel_node(
        self, run: LiveDispatch, node: NodeState, reason: str, *, persist: bool = False
    ) -> None:
        """Cancel one node: at once if it never started, else through its running stages
        (``persist``: store its flag, for a cancel that was not stored as a request)."""
        if node.status in TERMINAL or node.phase in (CancelPhase.APPLIED, CancelPhase.UNCONFIRMED):
            return
        first = node.phase is CancelPhase.NONE
        set_phase(node, CancelPhase.APPLIED)
        node.cancel_reason = node.cancel_reason or reason
        if persist and first:
            self.states.cancel_flag(run.dispatch_id, node)
        if node.task is None and node.status is not Status.NEW_OBJECT:
            # Started by a dispatcher that died, not resumed yet: its job is stopped when it
            # is (it resumes cancelled), never left running under a CANCELLED node.
            return
        if node.task is None:
            run.set_status(
                node,
                Status.CANCELLED,
                cancel_requested=True,
                cancel_reason=node.cancel_reason,
                cancel_stage=None,
            )
            return
        if node.ctx is not None:
            node.ctx.cancelled.set()
        sub = run.sub_runs.get(node.node_id)
        if sub is not None:
            self.cancel_all(sub, CancelReason.PARENT_SUBLATTICE_CANCELLED.value)
        if node.job_id is not None:
            self.cancel_packed(run, node)

    def cancel_all(self, run: LiveDispatch, reason: str) -> None:
        """Cancel every unfinished node: those that never started at once and together (a
        graph of 100,000 waiting nodes is settled in one pass), the others one by one."""
        run.cancel_all_reason = reason
        pending = []
        for node in list(run.nodes.values()):
            if node.status in TERMINAL:
                continue
            if node.status is Status.NEW_OBJECT and node.task is None:
                pending.append(node)
            else:
                self.cancel_node(run, node, reason, persist=True)
        self.cancel_pending(run, pending, reason)

    def cancel_pending(self, run: LiveDispatch, pending: list[NodeState], reason: str) -> None:
        """Settle ``pending`` nodes (never started, no task) CANCELLED, then what follows."""
        pending = [n for n in pending if n.status is Status.NEW_OBJECT and n.task is None]
        if not pending:
            return
        for node in pending:
            set_phase(node, CancelPhase.APPLIED)
        self.states.cancel_pending(run.dispatch_id, pending, reason)
        for node in pending:
            run.on_terminal(node)

    def time_out(self, run: LiveDispatch, node: NodeState) -> None:
        """A node ran past its ``timeout=``: cancel it with reason timeout."""
        if node.status in TERMINAL:
            return
        self.cancel_node(run, node, CancelReason.TIMEOUT.value, persist=True)
        if node.timed_out:
            self.states.note(
                run.dispatch_id, node, error=f"timed out after {node.timeout:g} s; stopped"
            )

    # -- jobs ---------------------------------------------------------------------------

    def cancel_packed(self, run: LiveDispatch, node: NodeState) -> None:
        """Cancel the other nodes that share this node's job."""
        job = self.jobs.get(node)
        if job is None:
            return
        for other_run, other in job.members:
            if other is not node and other.status not in TERMINAL:
                self.cancel_node(
                    other_run, other, CancelReason.PACKED_JOB_CANCELLED.value, persist=True
                )

    def handle_stored(self, run: LiveDispatch, node: NodeState, ctx: TaskContext) -> None:
        """The node's job handle was just stored: a cancel that came first stops the job now."""
        job = self.jobs.get(node)
        if job is not None and ctx.cancelled.is_set():
            self._start(job)
            self.cancel_packed(run, node)

    def stop_job(self, node: NodeState) -> JobState:
        """Start (once) stopping the node's job; the returned state tells when it is done."""
        job = self.jobs.jobs[node.job_id]  # type: ignore[index]
        self._start(job)
        return job

    def _start(self, job: JobState) -> None:
        """Start the retrying cancel of ``job`` unless it is already under way."""
        if job.task is None:
            try:
                job.executor.cancel_at_once(job.metadata, job.handle)
            except Exception as exc:  # the retrying cancel below says what is wrong
                logger.info("cancel of job %s could not start at once: %s", job.job_id, exc)
            event("cancel_requested", job=job.job_id, executor=type(job.executor).__name__)
            job.task = asyncio.create_task(self._retry(job), name=f"cancel-job-{job.job_id}")

    async def settle(self, run: LiveDispatch, node: NodeState, values: dict[str, Any]) -> None:
        """Record a cancelled node: CANCELLED, or CANCELLING while its job is not confirmed
        gone."""
        values.setdefault("cancel_reason", node.cancel_reason or CancelReason.USER.value)
        values["cancel_requested"] = True
        if node.timed_out:
            values.setdefault("error", f"timed out after {node.timeout:g} s; stopped")
        job = self.jobs.get(node)
        if job is not None and job.cancelling:
            run.set_status(node, Status.CANCELLING, **values)
            # Only once the cancel is confirmed, or has failed often enough to be retried
            # in the background, may the dispatch end around this node.
            await job.settled.wait()
            if not job.confirmed.is_set():
                set_phase(node, CancelPhase.UNCONFIRMED)
                job.waiting.append((run, node, values))
                run.check_finished(node)
                return
        run.set_status(node, Status.CANCELLED, **values)

    async def _retry(self, job: JobState) -> None:
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
            set_phase(node, CancelPhase.APPLIED)
            run.set_status(node, Status.CANCELLED, **values)
        job.waiting.clear()
        for _, member in job.members:
            self.jobs.release(member)


def set_phase(node: NodeState, phase: CancelPhase) -> None:
    """Move a node's cancel to ``phase``, as :data:`~.states.CANCEL_TRANSITIONS` allows."""
    if phase is node.phase:
        return
    if phase not in CANCEL_TRANSITIONS.get(node.phase, ()):
        raise AssertionError(f"node {node.node_id}: cancel phase {node.phase} -> {phase}")
    node.phase = phase


def cannot_be_refused(task_ids: Any, nodes: Collection[int]) -> tuple[bool, list[int] | None]:
    """(True, the tasks) if a cancel of ``task_ids`` (None: all) of a dispatch with these
    nodes will be stored as asked, so its running tasks may be stopped before it is; (False,
    None) if storing it may refuse it (ids that are not a list of this dispatch's tasks):
    nothing is stopped for a request that fails."""
    if task_ids is None:
        return True, None
    try:
        ids = task_id_list(task_ids)
    except TypeError:
        return False, None
    return (True, ids) if all(i in nodes for i in ids) else (False, None)
