"""A test executor plugin that records every hook it runs and can hold inside any stage.

It runs tasks for real: upload writes the payload into a per-task directory, provision writes a
marker, run starts ``python -m covalent_core.sdk.runner`` in its own session (its handle
is stored before the task's code starts), fetch reads the outcome, cleanup removes the
directory. So a test can check on disk what a stage did or never did.

Loaded into the dispatcher service through ``COVALENT_CORE_EXTRA_PLUGINS=recording_executor``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from covalent_core.errors import JobLostError
from covalent_core.hookspecs import hookimpl
from covalent_core.sdk.base import Executor, TaskContext, TaskOutcome
from covalent_core.sdk.processes import ProcessHandle, kill_group


def record(record_dir: str, node: str, event: str) -> None:
    with open(Path(record_dir) / "events.jsonl", "a") as fh:
        fh.write(json.dumps({"node": node, "event": event, "t": time.time()}) + "\n")


def events(record_dir: str | Path) -> list[dict[str, Any]]:
    """Every recorded event, in order."""
    path = Path(record_dir) / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


class RecordingExecutor(Executor):
    """Runs each task as a subprocess in ``record_dir/<dispatch>-<node>/``, recording stages."""

    short_name: ClassVar[str] = "recording"
    cancel_bound: ClassVar[float] = 5.0
    instances: ClassVar[int] = 0

    def __init__(
        self,
        record_dir: str,
        hold: str | None = None,
        cancel_failures: int = 0,
        pack: str | None = None,
        finish_despite_cancel: bool = False,
        cancel_grace: float = 2.0,
        can_reattach: bool = True,
    ) -> None:
        super().__init__()
        self.record_dir = record_dir
        self.hold = hold
        self.cancel_failures = cancel_failures
        self.pack = pack
        self.finish_despite_cancel = finish_despite_cancel
        self.cancel_grace = cancel_grace
        self.can_reattach = can_reattach
        self._cancel_calls = 0
        self._packs: dict[str, asyncio.Task[int]] = {}
        record(record_dir, f"pid:{os.getpid()}", "instantiate")

    def _dir(self, task: TaskContext) -> Path:
        return Path(self.record_dir) / f"{task.dispatch_id}-{task.node_id}"

    def _key(self, task: TaskContext) -> str:
        return f"{task.dispatch_id[:8]}:{task.node_id}"

    async def _stage(self, task: TaskContext, stage: str) -> None:
        record(self.record_dir, self._key(task), stage)
        if self.hold == stage.removesuffix("-held"):
            record(self.record_dir, self._key(task), f"holding:{stage}")
            release = Path(self.record_dir) / "release"
            while not release.exists():
                if task.cancel_requested and not self.finish_despite_cancel:
                    record(self.record_dir, self._key(task), f"saw-cancel:{stage}")
                    task.check_cancelled(stage)
                await asyncio.sleep(0.01)

    async def pickle(self, task: TaskContext) -> None:
        await self._stage(task, "pickle")
        task.payload = task.build_payload()

    async def upload(self, task: TaskContext) -> None:
        await self._stage(task, "upload")
        self._dir(task).mkdir(parents=True, exist_ok=True)
        (self._dir(task) / "payload").write_bytes(task.payload or b"")

    async def provision(self, task: TaskContext) -> None:
        await self._stage(task, "provision")
        (self._dir(task) / "provisioned").write_text("yes")

    async def run(self, task: TaskContext) -> None:
        await self._stage(task, "run")
        workdir = self._dir(task)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "covalent_core.sdk.runner",
            str(workdir / "payload"),
            str(workdir / "outcome"),
            stdout=open(workdir / "stdout", "wb"),  # noqa: SIM115
            stderr=open(workdir / "stderr", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        handle = ProcessHandle.of(proc.pid).to_dict()
        if self.pack:
            handle = {"pack": self.pack, **handle}
            if self.pack in self._packs:
                # A packed task rides on the first task's job: same handle, one process.
                proc.kill()
                await proc.wait()
                first = self._packs[self.pack]
                await task.set_job_handle(self._pack_handles[self.pack])
                record(self.record_dir, self._key(task), "started")
                code = await first
                task.state["returncode"] = code
                return
            self._pack_handles = getattr(self, "_pack_handles", {})
            self._pack_handles[self.pack] = json.dumps(handle, sort_keys=True)
            self._packs[self.pack] = asyncio.ensure_future(proc.wait())
            await task.set_job_handle(self._pack_handles[self.pack])
            record(self.record_dir, self._key(task), "started")
            task.state["returncode"] = await self._packs[self.pack]
            return
        await task.set_job_handle(handle)
        record(self.record_dir, self._key(task), "started")
        task.state["returncode"] = await proc.wait()

    async def fetch(self, task: TaskContext) -> None:
        await self._stage(task, "fetch")
        workdir = self._dir(task)
        out = (workdir / "stdout").read_text() if (workdir / "stdout").exists() else ""
        err = (workdir / "stderr").read_text() if (workdir / "stderr").exists() else ""
        outcome = workdir / "outcome"
        if outcome.exists():
            task.outcome = TaskOutcome.from_runner(outcome.read_bytes(), out, err)
        else:
            task.outcome = TaskOutcome.died(
                f"the task's process ended with code {task.state.get('returncode')}", out, err
            )

    async def reattach(self, task: TaskContext, job_handle: str | None) -> bool:
        record(self.record_dir, self._key(task), f"reattach:{'handle' if job_handle else 'none'}")
        if not self.can_reattach:
            raise NotImplementedError("this RecordingExecutor was told not to re-attach")
        if job_handle is None:
            return False  # run stores the handle before the task's process can start work
        data = json.loads(job_handle)
        data.pop("pack", None)
        process = ProcessHandle(**data)
        while process.alive():
            await asyncio.sleep(0.02)
        if not (self._dir(task) / "outcome").exists():
            raise JobLostError(f"process {process.pid} is gone and left no outcome")
        return True

    async def cleanup(self, task: TaskContext) -> None:
        record(self.record_dir, self._key(task), "cleanup")
        if self.hold == "cleanup":
            await self._stage(task, "cleanup-held")
        shutil.rmtree(self._dir(task), ignore_errors=True)

    async def cancel(self, task_metadata: dict[str, Any], job_handle: str) -> bool:
        self._cancel_calls += 1
        key = f"{task_metadata['dispatch_id'][:8]}:{task_metadata['node_id']}"
        record(self.record_dir, key, "cancel")
        if self.cancel_failures < 0 or self._cancel_calls <= self.cancel_failures:
            raise ConnectionError(f"resource unreachable (simulated, call {self._cancel_calls})")
        data = json.loads(job_handle)
        data.pop("pack", None)
        return await asyncio.to_thread(kill_group, ProcessHandle(**data), self.cancel_grace)


@hookimpl
def covalent_executor_classes() -> list[type[Executor]]:
    return [RecordingExecutor]


__all__ = ["RecordingExecutor", "events"]
