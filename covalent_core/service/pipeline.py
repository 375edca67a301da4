"""The stages of one node, in order, with the cancel flag checked before each.

instantiate -> pickle -> upload -> provision -> run -> fetch, then cleanup
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Awaitable
from typing import Any

from ..errors import TaskCancelledError
from ..executors.base import Executor, TaskContext, TaskOutcome
from ..graph import KIND_SUBLATTICE, PARAM_ARG, PARAM_WAIT
from ..serialize import task_payload
from ..status import STAGES_IN_ORDER, CancelReason, Stage, Status
from .run import DispatchRun, NodeState

logger = logging.getLogger(__name__)

# After a confirmed cancel, how long the run stage may take to notice its job is gone.
RUN_STAGE_SETTLE = 10.0


def build_inputs(run: DispatchRun, node: NodeState) -> tuple[list[bytes], dict[str, bytes]]:
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


async def until_cancelled(awaitable: Awaitable[Any], ctx: TaskContext, stage: Stage) -> Any:
    """Await a stage; if a cancel arrives first, cancel it and raise TaskCancelledError."""
    task = asyncio.ensure_future(awaitable)
    if task.done() or ctx.cancelled.is_set():
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise TaskCancelledError(ctx.dispatch_id, ctx.node_id, stage.value)
        return task.result()
    waiter = asyncio.ensure_future(ctx.cancelled.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    raise TaskCancelledError(ctx.dispatch_id, ctx.node_id, stage.value)


async def run_node(run: DispatchRun, node: NodeState) -> None:
    """Take one node through its stages and record how it ended. Never raises."""
    dispatcher = run.dispatcher
    ctx = TaskContext(
        dispatch_id=run.dispatch_id,
        node_id=node.node_id,
        name=node.name,
        executor_name=node.executor or "local",
    )
    node.ctx = ctx
    if node.cancel_requested:
        ctx.cancelled.set()
    ctx._store_handle = lambda c, h: dispatcher.store_job_handle(run, node, c, h)
    args, kwargs = build_inputs(run, node)
    task = {"dispatch_id": run.dispatch_id, "node_id": node.node_id}
    ctx._build_payload = lambda override: task_payload(
        node.function, args, kwargs, {**(run.environment or {}), "task": task, **(override or {})}
    )
    timer: asyncio.TimerHandle | None = None
    executor: Executor | None = None
    stage = Stage.INSTANTIATE
    status, values = Status.FAILED, {}
    semaphore = dispatcher.semaphore(node)
    try:
        async with semaphore:
            ctx.check_cancelled(Stage.INSTANTIATE)
            run.set_status(node, Status.RUNNING)
            if node.timeout:
                timer = asyncio.get_running_loop().call_later(
                    node.timeout, dispatcher.time_out, run, node
                )
            hook = dispatcher.registry.hook
            for stage in STAGES_IN_ORDER:
                ctx.check_cancelled(stage)
                run.set_stage(node, stage)
                if node.kind == KIND_SUBLATTICE:
                    await run_sublattice_stage(run, node, ctx, stage)
                elif stage is Stage.INSTANTIATE:
                    executor = await until_cancelled(dispatcher.executor_for(node), ctx, stage)
                elif stage is Stage.RUN:
                    await run_stage(run, node, ctx, executor)
                else:
                    call = getattr(hook, f"covalent_{stage.value}")
                    await until_cancelled(call(executor=executor, task=ctx), ctx, stage)
            ctx.check_cancelled(Stage.FETCH)
            status, values = outcome_values(ctx)
    except TaskCancelledError as exc:
        status = Status.CANCELLED
        values = {"cancel_stage": exc.stage or stage.value}
    except Exception as exc:
        if ctx.cancelled.is_set():
            status, values = Status.CANCELLED, {"cancel_stage": stage.value}
        else:
            status = Status.FAILED
            values = {
                "error": f"stage {stage.value!r} failed: {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
    finally:
        if timer is not None:
            timer.cancel()
    if executor is not None:
        try:
            await dispatcher.registry.hook.covalent_cleanup(executor=executor, task=ctx)
        except Exception as exc:
            logger.warning("cleanup of node %s failed: %s", node.node_id, exc)
            note = f"cleanup failed: {type(exc).__name__}: {exc}"
            values["error"] = f"{values['error']}\n{note}" if values.get("error") else note
    if status is Status.CANCELLED:
        await finish_cancel(run, node, values)
    else:
        if status is Status.COMPLETED:
            node.output = values["output"]
        run.set_status(node, status, **values)
    dispatcher.release_job(node)


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
    if outcome.traceback:
        # As Covalent does: the failed task's traceback ends its stderr.
        values["stderr"] = (outcome.stderr or "") + outcome.traceback
    return Status.FAILED, values


async def finish_cancel(run: DispatchRun, node: NodeState, values: dict[str, Any]) -> None:
    """Record a cancelled node: CANCELLED, or CANCELLING while its job is not confirmed gone."""
    reason = node.cancel_reason or CancelReason.USER.value
    values.setdefault("cancel_reason", reason)
    values["cancel_requested"] = True
    if node.timed_out:
        values.setdefault("error", f"timed out after {node.timeout:g} s; stopped")
    job = run.dispatcher.jobs.get(node.job_id) if node.job_id is not None else None
    if job is not None and job.task is not None and not job.confirmed.is_set():
        run.set_status(node, Status.CANCELLING, **values)
        # The cancel is under way: wait until it is confirmed, or has failed often enough
        # to be retried in the background; only then may the dispatch end around it.
        await job.settled.wait()
        if job.confirmed.is_set():
            run.set_status(node, Status.CANCELLED, **values)
            return
        node.cancel_unconfirmed = True
        run._check_finished()
        job.waiting_nodes.append((run, node, values))
        return
    run.set_status(node, Status.CANCELLED, **values)


async def run_stage(
    run: DispatchRun, node: NodeState, ctx: TaskContext, executor: Executor | None
) -> None:
    """Run the job; on cancel, stop it through ``covalent_cancel`` and wait for it to end."""
    dispatcher = run.dispatcher
    job_task = asyncio.ensure_future(
        dispatcher.registry.hook.covalent_run(executor=executor, task=ctx)
    )
    waiter = asyncio.ensure_future(ctx.cancelled.wait())
    try:
        await asyncio.wait({job_task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if job_task.done():
        job_task.result()
        return
    run.set_status(node, Status.CANCELLING)
    if ctx.job_handle is not None and node.job_id is not None:
        job = dispatcher.cancel_job(run, node)
        await job.settled.wait()
        if job.confirmed.is_set():
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(job_task), RUN_STAGE_SETTLE)
    if not job_task.done():
        job_task.cancel()
    with contextlib.suppress(BaseException):
        await job_task
    raise TaskCancelledError(ctx.dispatch_id, ctx.node_id, Stage.RUN.value)


async def run_sublattice_stage(
    run: DispatchRun, node: NodeState, ctx: TaskContext, stage: Stage
) -> None:
    """A sublattice node: build its graph in a worker (run), run it as a sub-dispatch."""
    dispatcher = run.dispatcher
    if stage is Stage.RUN:
        if node.sub_dispatch_id is None:
            args, kwargs = build_inputs(run, node)
            records = await until_cancelled(
                dispatcher.build_sublattice(run, node, args, kwargs), ctx, stage
            )
            ctx.check_cancelled(stage)
            sub = await dispatcher.create_sub_run(run, node, records)
        else:
            sub = await dispatcher.resume_sub_run(run, node)
        run.sub_runs[node.node_id] = sub
        if ctx.cancelled.is_set():
            sub.cancel_all(CancelReason.PARENT_SUBLATTICE_CANCELLED.value)
        status, error, output = await dispatcher.execute_run(sub)
        if ctx.cancelled.is_set() or status is Status.CANCELLED:
            raise TaskCancelledError(ctx.dispatch_id, ctx.node_id, stage.value)
        if status is Status.FAILED:
            ctx.outcome = TaskOutcome(
                ok=False, error=f"sublattice dispatch {sub.dispatch_id} failed: {error}"
            )
        else:
            ctx.outcome = TaskOutcome(ok=True, output=output)
