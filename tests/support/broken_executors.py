"""Deliberately broken executors: the conformance suite must report each one failing.

Each is the example plugin's ``WorkdirExecutor`` with one mistake an executor author could
really make. Loaded through ``COVALENT_CORE_EXTRA_PLUGINS=broken_executors``.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from covalent_workdir import WorkdirExecutor

from covalent_core.sdk import Executor, ProcessHandle, TaskContext, hookimpl


class NoopCancelExecutor(WorkdirExecutor):
    """Its cancel says the job is gone without stopping it."""

    short_name: ClassVar[str] = "broken-noop-cancel"

    async def cancel(self, task_metadata: dict[str, Any], job_handle: str) -> bool:
        return True


class IgnoresCancelFlagExecutor(WorkdirExecutor):
    """Retries a task whose process ended badly, without asking whether it was cancelled."""

    short_name: ClassVar[str] = "broken-ignores-cancel"

    async def run(self, task: TaskContext) -> None:
        await super().run(task)
        if task.state["returncode"] != 0:
            # Bug: a cancelled job also ends badly; this should call task.check_cancelled().
            workdir = self.workdir(task)
            proc = await asyncio.create_subprocess_exec(
                self.python_path,
                "runner.py",
                "payload",
                "outcome",
                cwd=workdir,
                start_new_session=True,
            )
            task.state["returncode"] = await proc.wait()


class LitteringExecutor(WorkdirExecutor):
    """Forgets to clean up the task's directory."""

    short_name: ClassVar[str] = "broken-littering"

    async def cleanup(self, task: TaskContext) -> None:
        return None


class RerunsOnReattachExecutor(WorkdirExecutor):
    """After a dispatcher died, says its job never started: the task runs a second time."""

    short_name: ClassVar[str] = "broken-reruns"

    async def reattach(self, task: TaskContext, job_handle: str | None) -> bool:
        return False


class KillsOnReattachExecutor(WorkdirExecutor):
    """After a dispatcher died, stops the job instead of waiting for it."""

    short_name: ClassVar[str] = "broken-kills-on-reattach"

    async def reattach(self, task: TaskContext, job_handle: str | None) -> bool:
        if job_handle is not None:
            await self.cancel(task.metadata, job_handle)
        return True


BROKEN = [
    NoopCancelExecutor,
    IgnoresCancelFlagExecutor,
    LitteringExecutor,
    RerunsOnReattachExecutor,
    KillsOnReattachExecutor,
]


def alive(handle: str) -> bool:
    """The probe every broken executor's test uses."""
    return ProcessHandle.from_json(handle).alive()


@hookimpl
def covalent_executor_classes() -> list[type[Executor]]:
    return list(BROKEN)
