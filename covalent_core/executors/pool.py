"""Warm worker processes that run task payloads, each in its own killable process group.

A worker is a Python interpreter that has already started (and imported what earlier tasks
imported), so a task costs no start-up. Each runs one task at a time, in its own session;
killing its group stops the task, and the pool replaces the worker. Used by the local
executor, and by executors that run user code locally (building a quantum program, say).
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Awaitable, Callable

from .. import config
from .base import TaskOutcome
from .processes import ProcessHandle, describe_exit, kill_group
from .worker import HEADER


class WorkerDiedError(Exception):
    """The worker process ended while running a task."""

    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode
        super().__init__(describe_exit(returncode))


class Worker:
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


class WorkerPool:
    """Up to ``max_workers`` warm workers (``python -m covalent_core.executors.worker``)."""

    def __init__(self, python_path: str, max_workers: int = 16) -> None:
        self.python_path = python_path
        self.max_workers = max_workers
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()

    async def _spawn(self) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            self.python_path,
            "-m",
            "covalent_core.executors.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            env=config.child_environment(),
            limit=1 << 20,
        )
        return Worker(proc, ProcessHandle.of(proc.pid))

    async def _acquire(self) -> Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.alive():
                self._busy.add(worker)
                return worker
        worker = await self._spawn()
        self._busy.add(worker)
        return worker

    def _release(self, worker: Worker) -> None:
        self._busy.discard(worker)
        if worker.alive():
            self._idle.append(worker)

    async def run(
        self,
        payload: bytes,
        started: Callable[[ProcessHandle], Awaitable[None]] | None = None,
        kill_grace: float = 1.0,
    ) -> TaskOutcome:
        """Run ``payload`` in a warm worker; ``started(handle)`` is awaited before it starts.

        If the caller is cancelled while the task runs, the worker's group is killed.
        """
        worker = await self._acquire()
        try:
            if started is not None:
                await started(worker.handle)
            try:
                outcome, out, err = await worker.execute(payload)
            except WorkerDiedError as exc:
                return TaskOutcome.died(str(exc))
            except asyncio.CancelledError:
                await asyncio.to_thread(kill_group, worker.handle, kill_grace)
                raise
            return TaskOutcome.from_runner(outcome, out, err)
        finally:
            self._release(worker)

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
