"""The built-in local executor: each task in a warm worker process that is its own process group.

Workers are started on demand and reused, so a task costs no interpreter start-up; each still
runs alone in its worker, and cancelling it kills that worker's whole process group (SIGTERM,
a grace period, then SIGKILL). The worker is then replaced.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import sys
from typing import Any, ClassVar

from .. import config
from ..hookspecs import hookimpl
from ..process import ProcessHandle, describe_exit, kill_group
from .base import Executor, TaskContext, TaskOutcome
from .local_worker import HEADER

logger = logging.getLogger(__name__)


class WorkerDiedError(Exception):
    """The worker process ended while running a task."""

    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode
        super().__init__(describe_exit(returncode))


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process, handle: ProcessHandle) -> None:
        self.proc = proc
        self.handle = handle

    async def execute(self, payload: bytes) -> tuple[bytes, str, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.proc.stdin.write(HEADER.pack(len(data)) + data)
            await self.proc.stdin.drain()
            header = await self.proc.stdout.readexactly(HEADER.size)
            (size,) = HEADER.unpack(header)
            body = await self.proc.stdout.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError):
            raise WorkerDiedError(await self.proc.wait()) from None
        return pickle.loads(body)

    def alive(self) -> bool:
        return self.proc.returncode is None

    async def stop(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 2)
            except asyncio.TimeoutError:
                await asyncio.to_thread(kill_group, self.handle, 0.5)
                await self.proc.wait()


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
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()

    @classmethod
    def concurrency_for(cls, config: dict[str, Any]) -> int:
        """One task per worker: ``max_workers``."""
        return int(config.get("max_workers", 16))

    async def _spawn(self) -> _Worker:
        env = config.child_environment()
        proc = await asyncio.create_subprocess_exec(
            self.python_path,
            "-m",
            "covalent_core.executors.local_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            limit=1 << 20,
        )
        return _Worker(proc, ProcessHandle.of(proc.pid))

    async def _acquire(self) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.alive():
                self._busy.add(worker)
                return worker
        worker = await self._spawn()
        self._busy.add(worker)
        return worker

    def _release(self, worker: _Worker) -> None:
        self._busy.discard(worker)
        if worker.alive():
            self._idle.append(worker)

    async def run(self, task: TaskContext) -> None:
        """Hand the payload to a warm worker; its handle is stored before the task starts."""
        assert task.payload is not None
        worker = await self._acquire()
        try:
            await task.set_job_handle(worker.handle.to_dict())
            task.check_cancelled("run")
            try:
                outcome, out, err = await worker.execute(task.payload)
            except WorkerDiedError as exc:
                task.state["outcome"] = TaskOutcome.died(str(exc))
                return
            task.state["outcome"] = TaskOutcome.from_runner(outcome, out, err)
        finally:
            self._release(worker)

    async def fetch(self, task: TaskContext) -> None:
        """The outcome came back over the worker's pipe; nothing to download."""
        task.outcome = task.state.pop("outcome", None)

    async def cancel(self, task_metadata: dict[str, Any], job_handle: str) -> bool:
        """Kill the worker's process group, checking the start time so a reused PID is spared."""
        handle = ProcessHandle(**json.loads(job_handle))
        return await asyncio.to_thread(kill_group, handle, self.cancel_grace)

    async def warm_up(self, count: int) -> None:
        """Start ``count`` idle workers ahead of need."""
        count = min(count, self.max_workers) - len(self._idle) - len(self._busy)
        if count > 0:
            self._idle.extend(await asyncio.gather(*(self._spawn() for _ in range(count))))

    async def close(self) -> None:
        """Stop every worker."""
        workers = self._idle + list(self._busy)
        self._idle, self._busy = [], set()
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)


@hookimpl
def covalent_executor_classes() -> list[type[Executor]]:
    """The local executor is registered like any plugin's."""
    return [LocalExecutor]
