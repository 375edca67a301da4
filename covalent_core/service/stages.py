"""The stages of one node, in order, with the cancel flag checked before each.

instantiate -> pickle -> upload -> provision -> run -> fetch, then cleanup

A node a dead dispatcher had started is resumed where it was: its job is re-attached to
(``covalent_reattach`` instead of ``run``), a task that never started is started once, and an
outcome that was already stored only waits for its cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config
from ..errors import JobLostError, TaskCancelledError
from ..graph import KIND_SUBLATTICE
from ..sdk.base import Executor, TaskContext, TaskOutcome
from ..status import STAGES_IN_ORDER, CancelReason, Stage, Status
from ..values import BIG_VALUE, VALUES, store_big
from .events import event
from .interrupt import done_or_cancelled, until_cancelled
from .task_io import inputs_of, outcome_values, task_context

if TYPE_CHECKING:
    from .cancel import Cancels
    from .executor_cache import Capacity, ExecutorCache
    from .jobs import JobRegistry
    from .recorder import NodeState
    from .scheduling import LiveDispatch
    from .sublattices import Sublattices

logger = logging.getLogger(__name__)

# After a confirmed cancel, how long the run stage may take to notice its job is gone.
RUN_STAGE_SETTLE = 10.0
# How long re-attaching to a finished job may take when it is only to clean up after it.
CLEANUP_REATTACH_LIMIT = 60.0

OPTIONAL_STAGES = frozenset({Stage.UPLOAD, Stage.PROVISION, Stage.FETCH})
"""Stages whose base implementation does nothing: skipped where nothing else does either."""
DEFAULT_HOOKS = "covalent_core.hookimpls"

SubRunner = Callable[["LiveDispatch"], Awaitable[tuple[Status, str | None, bytes | None]]]


@dataclass
class _Progress:
    """How far one node got through its stages: what is recorded when it ends."""

    executor: Executor | None = None
    stage: Stage = Stage.INSTANTIATE
    stored: bool = False  # the outcome is in the store already, only cleanup is left
    ended_at: float | None = None  # when its outcome was known, if it completed
    ran: bool = False  # it reached its run stage
    timer: asyncio.TimerHandle | None = None  # its ``timeout=``


class NodeStages:
    """Takes nodes through their stages with the executors, jobs and sublattices given."""

    def __init__(
        self,
        hooks: Any,
        executors: ExecutorCache,
        jobs: JobRegistry,
        cancels: Cancels,
        sublattices: Sublattices,
        drive_sub: SubRunner,
    ) -> None:
        self.hooks = hooks
        self.executors = executors
        self.jobs = jobs
        self.cancels = cancels
        self.sublattices = sublattices
        self.drive_sub = drive_sub
        self._values_root: Path | None = None
        self._skipped: dict[tuple[type[Executor], Stage], bool] = {}

    def capacity_of(self, node: NodeState) -> Capacity | None:
        """The slots the node's executor has (None: a sublattice, or an executor that cannot
        be found, which fails the node at its first stage)."""
        if node.kind == KIND_SUBLATTICE:
            return None
        try:
            return self.executors.capacity(node.executor, node.executor_config)
        except Exception:
            return None

    def context(self, run: LiveDispatch, node: NodeState) -> TaskContext:
        """The task context of a node: its ids, and how to store its handle and payload."""
        if self._values_root is None:
            self._values_root = config.data_dir() / VALUES  # this service's, for its life

        async def record(ctx: TaskContext, handle: str) -> None:
            await self.jobs.store_handle(run, node, handle)
            self.cancels.handle_stored(run, node, ctx)

        return task_context(run, node, self._values_root / run.dispatch_id, record)

    async def drive_node(self, run: LiveDispatch, node: NodeState) -> None:
        """Take one node through its stages and record how it ended. Never raises.

        A node that is not NEW was started by a dispatcher that died: it is resumed.
        """
        resuming = node.status is not Status.NEW_OBJECT
        event("node_started", dispatch=run.dispatch_id, node=node.node_id, name=node.name,
              executor=node.executor, resumed=resuming or None)  # fmt: skip
        ctx = node.ctx = self.context(run, node)
        done = _Progress()
        try:
            status, values = await self._through_stages(run, node, ctx, done, resuming)
        finally:
            if done.timer is not None:
                done.timer.cancel()
        await self._record_end(run, node, ctx, done, status, values)

    async def _through_stages(
        self, run: LiveDispatch, node: NodeState, ctx: TaskContext, done: _Progress, resuming: bool
    ) -> tuple[Status, dict[str, Any]]:
        """Walk the node's stages (holding its executor's slot); how it ended."""
        capacity = self.capacity_of(node)  # a new node was started with its slot taken
        if capacity is not None and resuming:
            capacity.take()  # a running job does not queue
        try:
            try:
                await self._walk(run, node, ctx, done, resuming)
                return await self._outcome(run, node, ctx, done)
            finally:
                if node.batch is not None and not done.ran:
                    node.batch.leave(node.node_id)  # it never reached its run: not awaited
                if capacity is not None:
                    capacity.release(node.batch)
        except TaskCancelledError as exc:
            return Status.CANCELLED, {"cancel_stage": exc.stage or done.stage.value}
        except JobLostError as exc:
            return Status.FAILED, {
                "error": "the dispatcher running this task stopped, and the one that took over "
                f"found no trace of its job: {exc}",
                "cancel_reason": CancelReason.DISPATCHER_LOST.value,
            }
        except Exception as exc:
            if ctx.cancelled.is_set():
                return Status.CANCELLED, {"cancel_stage": done.stage.value}
            return Status.FAILED, {
                "error": f"stage {done.stage.value!r} failed: {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }

    async def _walk(
        self, run: LiveDispatch, node: NodeState, ctx: TaskContext, done: _Progress, resuming: bool
    ) -> None:
        """Each stage in turn (those left, when resuming), the cancel flag checked before each."""
        stages: tuple[Stage, ...] = STAGES_IN_ORDER
        if resuming:
            done.timer = self._start_timer(run, node)
            if node.kind != KIND_SUBLATTICE:
                done.executor = await self.executors.get(node.executor, node.executor_config)
            stages, done.stored = await self._resume(run, node, ctx, done.executor)
        else:
            ctx.check_cancelled(Stage.INSTANTIATE)
            run.set_status(node, Status.RUNNING)
            done.timer = self._start_timer(run, node)
        for stage in stages:
            done.stage = stage
            ctx.check_cancelled(stage)
            executor = done.executor
            if stage is Stage.UPLOAD and not (executor and executor.handle_before_start):
                # From here on the resource changes: a dispatcher that takes over must know
                # the node had started.
                await run.states.flush()
            if node.kind != KIND_SUBLATTICE and self._skips(executor, stage):
                continue  # the executor does nothing there: no call, no write
            run.states.stage(run.dispatch_id, node, stage)
            if node.kind == KIND_SUBLATTICE:
                await self._sublattice(run, node, ctx, stage)
            elif stage is Stage.INSTANTIATE:
                done.executor = self.executors.cached(node.executor, node.executor_config)
                if done.executor is None:
                    made = self.executors.get(node.executor, node.executor_config)
                    done.executor = await until_cancelled(made, ctx, stage)
            elif stage is Stage.RUN:
                done.ran = True
                await self._watch(
                    run, node, ctx, self.hooks.covalent_run(executor=executor, task=ctx)
                )
            else:
                call = getattr(self.hooks, f"covalent_{stage.value}")
                await until_cancelled(call(executor=executor, task=ctx), ctx, stage)

    async def _outcome(
        self, run: LiveDispatch, node: NodeState, ctx: TaskContext, done: _Progress
    ) -> tuple[Status, dict[str, Any]]:
        """How a node that went through its stages ended; a completed one's children start."""
        if done.stored:
            return (Status.FAILED if node.error else Status.COMPLETED), {}
        ctx.check_cancelled(Stage.FETCH)
        status, values = outcome_values(ctx)
        output = values.get("output")
        if output is not None and len(output) > BIG_VALUE:
            # A big value fetched from another machine goes to a file, once.
            name = f"{node.node_id}-fetched.pickle"
            values["output"] = await asyncio.to_thread(store_big, run.dispatch_id, name, output)
        if status is Status.COMPLETED:
            # Its children need not wait for the cleanup: they start now, and the first
            # commit they wait for (their job handle's) holds this outcome. It ended now, as
            # far as its times say (they start after it ended).
            node.output = values["output"]
            done.ended_at = time.time()
            run.output_ready(node)
        return status, values

    async def _record_end(
        self,
        run: LiveDispatch,
        node: NodeState,
        ctx: TaskContext,
        done: _Progress,
        status: Status,
        values: dict[str, Any],
    ) -> None:
        """Clean up after the node's job, then record how the node ended."""
        if done.executor is not None:
            if status is not Status.CANCELLED and not done.stored:
                # Kept before cleanup, so that a dispatcher that takes over after a crash here
                # finds the outcome rather than a job whose traces cleanup already removed.
                # Its slot is free and its children started: the next commit, which one of
                # them often asks for at once, is soon enough (a node without children, the
                # last of a dispatch say, commits now).
                run.states.note(run.dispatch_id, node, stage=Stage.CLEANUP.value, **values)
                await run.states.flush(soon=bool(node.children))
            await self._cleanup(done.executor, ctx, node, values)
            if ctx.streams is not None and "stdout" not in values:
                values["stdout"], values["stderr"] = ctx.streams  # a stopped task's output
        if status is Status.CANCELLED:
            await self.cancels.settle(run, node, values)
        else:
            if status is Status.COMPLETED and "output" in values:
                node.output = values["output"]
            if status is Status.COMPLETED and done.ended_at is not None:
                values["ended_at"] = done.ended_at
            run.set_status(node, status, **values)
        self.jobs.release(node)
        node.ctx = None  # its payload (function, arguments, environment) is not needed again
        event("node_ended", dispatch=run.dispatch_id, node=node.node_id, name=node.name,
              status=status, stage=values.get("cancel_stage") or done.stage.value,
              reason=values.get("cancel_reason"))  # fmt: skip

    def _skips(self, executor: Executor | None, stage: Stage) -> bool:
        """True if neither the executor nor any plugin does anything at ``stage`` (its
        method is the base class's, which does nothing, and no plugin implements the hook)."""
        if executor is None or stage not in OPTIONAL_STAGES:
            return False
        key = (type(executor), stage)
        skips = self._skipped.get(key)
        if skips is None:
            own = getattr(type(executor), stage.value) is not getattr(Executor, stage.value)
            hook = getattr(self.hooks, f"covalent_{stage.value}")
            others = [i for i in hook.get_hookimpls() if i.plugin_name != DEFAULT_HOOKS]
            skips = self._skipped[key] = not own and not others
        return skips

    def _start_timer(self, run: LiveDispatch, node: NodeState) -> asyncio.TimerHandle | None:
        """The node's ``timeout=``, counted from when it started (by whichever dispatcher)."""
        if not node.timeout:
            return None
        elapsed = time.time() - node.started_at if node.started_at else 0.0
        delay = max(0.0, node.timeout - elapsed)
        return asyncio.get_running_loop().call_later(delay, self.cancels.time_out, run, node)

    async def _resume(
        self, run: LiveDispatch, node: NodeState, ctx: TaskContext, executor: Executor | None
    ) -> tuple[tuple[Stage, ...], bool]:
        """What is left of a node a dead dispatcher had started: (stages, outcome stored)."""
        if node.kind == KIND_SUBLATTICE:
            if node.sub_dispatch_id is None:  # its graph was being built: build it again
                return STAGES_IN_ORDER, False
            await self._sublattice(run, node, ctx, Stage.RUN)
            return (), False
        assert executor is not None
        handle = node.job_handle
        if handle is not None and node.job_id is not None:
            ctx.job_handle = handle
            self.jobs.attach(node.job_id, executor, handle, run, node)
            self.jobs.mark_attached(node.job_id)
        reattach = self.hooks.covalent_reattach(executor=executor, task=ctx, job_handle=handle)
        if node.stage == Stage.CLEANUP.value:
            # The outcome was stored; re-attaching only tells the executor what to clean up.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reattach, CLEANUP_REATTACH_LIMIT)
            return (), True
        try:
            found = await self._watch(run, node, ctx, reattach, searching=handle is None)
        except NotImplementedError:
            raise JobLostError(await self._cannot_reattach(run, node, executor)) from None
        if found:
            return (Stage.FETCH,), False
        # Never started: start it now (the executor is made already).
        return STAGES_IN_ORDER[1:], False

    async def _cannot_reattach(self, run: LiveDispatch, node: NodeState, executor: Executor) -> str:
        """Stop the job of an executor that cannot re-attach; why the node fails."""
        name = node.executor or "local"
        why = f"executor {name!r} ({type(executor).__name__}) cannot re-attach to a job"
        if self.jobs.get(node) is None:
            return f"{why}, and no job handle was stored; dispatch it again"
        job = self.cancels.stop_job(node)
        await job.settled.wait()
        return (
            f"{why} (it does not implement reattach): its job was stopped so that nothing is "
            "left running; dispatch it again"
        )

    async def _cleanup(
        self, executor: Executor, ctx: TaskContext, node: NodeState, values: dict[str, Any]
    ) -> None:
        try:
            await self.hooks.covalent_cleanup(executor=executor, task=ctx)
        except Exception as exc:
            logger.warning("cleanup of node %s failed: %s", node.node_id, exc)
            note = f"cleanup failed: {type(exc).__name__}: {exc}"
            values["error"] = f"{values['error']}\n{note}" if values.get("error") else note

    async def _watch(
        self,
        run: LiveDispatch,
        node: NodeState,
        ctx: TaskContext,
        call: Awaitable[Any],
        *,
        searching: bool = False,
    ) -> Any:
        """Await the job (``run`` or ``reattach``); on cancel, stop it and wait for the end.

        ``searching``: the executor is looking for a job a dead dispatcher may have started
        without storing its handle. A cancel does not interrupt the search: a job it finds is
        stopped as soon as its handle is stored.
        """
        job_task = asyncio.ensure_future(call)
        await done_or_cancelled(job_task, ctx.cancelled)
        if job_task.done():
            return job_task.result()
        run.set_status(node, Status.CANCELLING)
        if searching and ctx.job_handle is None:
            with contextlib.suppress(BaseException):
                await job_task
        if ctx.job_handle is not None and node.job_id is not None:
            job = self.cancels.stop_job(node)
            await job.settled.wait()
            if job.confirmed.is_set():
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(asyncio.shield(job_task), RUN_STAGE_SETTLE)
        if not job_task.done():
            job_task.cancel()
        with contextlib.suppress(BaseException):
            await job_task
        raise TaskCancelledError(ctx.dispatch_id, ctx.node_id, Stage.RUN.value)

    async def _sublattice(
        self, run: LiveDispatch, node: NodeState, ctx: TaskContext, stage: Stage
    ) -> None:
        """A sublattice node: at ``run``, build its graph in a worker and run it as a dispatch."""
        if stage is not Stage.RUN:
            return
        if node.sub_dispatch_id is None:
            args, kwargs = inputs_of(run, node)
            build = self.sublattices.build(run, node, args, kwargs)
            records = await until_cancelled(build, ctx, stage)
            ctx.check_cancelled(stage)
            sub = await self.sublattices.create(run, node, records)
        else:  # a previous dispatcher had started it: resume it
            sub = await self.sublattices.resume(run, node)
        run.sub_runs[node.node_id] = sub
        if ctx.cancelled.is_set():
            self.cancels.cancel_all(sub, CancelReason.PARENT_SUBLATTICE_CANCELLED.value)
        status, error, output = await self.drive_sub(sub)
        if ctx.cancelled.is_set() or status is Status.CANCELLED:
            raise TaskCancelledError(ctx.dispatch_id, ctx.node_id, stage.value)
        if status is Status.FAILED:
            ctx.outcome = TaskOutcome(
                ok=False, error=f"sublattice dispatch {sub.dispatch_id} failed: {error}"
            )
        else:
            ctx.outcome = TaskOutcome(ok=True, output=output)
