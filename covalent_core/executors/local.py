"""The built-in local executor: each task in a warm worker process that is its own process group.

Workers are started on demand and reused, so a task costs no interpreter start-up; each still
runs alone in its worker, and cancelling it kills that worker's whole process group (SIGTERM,
a grace period, then SIGKILL). The worker is then replaced.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any, ClassVar

from ..hookspecs import hookimpl
from ..process import ProcessHandle, kill_group
from .base import Executor, TaskContext
from .pool import WorkerPool

logger = logging.getLogger(__name__)


class LocalExecutor(Executor):
    """Runs tasks on this machine, each killable on its own.

    Options: ``max_workers`` (tasks at once, default 16), ``cancel_grace`` (seconds between
    SIGTERM and SIGKILL, default 3), ``python_path`` (interpreter for the workers, default
    the dispatcher's).
    """

    short_name: ClassVar[str] = "local"
    cancel_bound: ClassVar[float] = 5.0

    def __init__(
        self, max_workers: int = 16, cancel_grace: float = 3.0, python_path: str | None = None
    ) -> None:
        super().__init__()
        if max_workers < 1:
            from ..errors import ExecutorConfigError

            raise ExecutorConfigError(f"max_workers must be at least 1, not {max_workers}")
        self.max_workers = max_workers
        self.cancel_grace = cancel_grace
        self.python_path = python_path or sys.executable
        self.pool = WorkerPool(self.python_path, max_workers)

    @classmethod
    def concurrency_for(cls, config: dict[str, Any]) -> int:
        """One task per worker: ``max_workers``."""
        return int(config.get("max_workers", 16))

    async def run(self, task: TaskContext) -> None:
        """Hand the payload to a warm worker; its handle is stored before the task starts."""
        assert task.payload is not None

        async def started(handle: ProcessHandle) -> None:
            await task.set_job_handle(handle.to_dict())
            task.check_cancelled("run")

        task.state["outcome"] = await self.pool.run(task.payload, started)

    async def fetch(self, task: TaskContext) -> None:
        """The outcome came back over the worker's pipe; nothing to download."""
        task.outcome = task.state.pop("outcome", None)

    async def cancel(self, task_metadata: dict[str, Any], job_handle: str) -> bool:
        """Kill the worker's process group, checking the start time so a reused PID is spared."""
        handle = ProcessHandle(**json.loads(job_handle))
        return await asyncio.to_thread(kill_group, handle, self.cancel_grace)

    async def warm_up(self, count: int) -> None:
        """Start ``count`` idle workers ahead of need."""
        await self.pool.warm_up(count)

    async def close(self) -> None:
        """Stop every worker."""
        await self.pool.close()


@hookimpl
def covalent_executor_classes() -> list[type[Executor]]:
    """The local executor is registered like any plugin's."""
    return [LocalExecutor]
