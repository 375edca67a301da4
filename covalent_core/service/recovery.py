"""Nodes that a dead dispatcher had started, found when another takes its dispatch over."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..graph import KIND_SUBLATTICE
from ..status import CancelReason, Status

if TYPE_CHECKING:
    from .jobs import JobRegistry
    from .scheduling import DispatchRun


async def recover_started_nodes(run: DispatchRun, rows: dict[int, Any], jobs: JobRegistry) -> None:
    """Stop the jobs a dead dispatcher had started, so that nothing is left running.

    A sublattice node is resumed instead: its sub-dispatch is loaded and run again.
    """
    for node in run.nodes.values():
        if node.status not in (Status.RUNNING, Status.CANCELLING):
            continue
        if node.kind == KIND_SUBLATTICE and node.sub_dispatch_id:
            continue
        row = rows[node.node_id]
        if row.job_handle:
            executor = await jobs.executors.get(node.executor, node.executor_config)
            job = jobs.attach(node.job_id, executor, row.job_handle, run, node)  # type: ignore[arg-type]
            jobs.start_cancel(job)
            await job.settled.wait()
        if node.cancel_requested:
            run.set_status(node, Status.CANCELLED, cancel_stage=node.stage)
        else:
            run.set_status(
                node,
                Status.FAILED,
                cancel_reason=CancelReason.DISPATCHER_LOST.value,
                error=(
                    "the dispatcher running this task stopped before it finished; its "
                    "job was stopped so nothing is left running. Dispatch it again."
                ),
            )
