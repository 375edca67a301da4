"""Warm worker processes that run task payloads, each in its own killable process group.

A worker is a Python interpreter that has already started (and imported what earlier tasks
imported), so a task costs no start-up. Each runs one task at a time, in its own session;
killing its group stops the task, and the pool replaces the worker. Used by the local
executor, and by executors that run user code locally (building a quantum program, say).

Every task is given a directory of its own, where the worker marks that it started and
leaves the outcome: a task whose dispatcher died finishes there, and :func:`reattach_worker`
collects it later.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import pickle
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .. import config
from ..errors import JobLostError
from . import containment
from .base import TaskOutcome
from .processes import ProcessHandle, describe_exit, kill_group
from .values import keep_big_text
from .worker import GO, HEADER, OUTCOME, STARTED, STDERR, STDOUT

# How often a re-attached task's process is looked at, at first and at most.
INLINE_READ_MAX = 1 << 20  # outcome files up to this size are read on the event loop
REATTACH_POLL_START = 0.02
REATTACH_POLL_MAX = 0.5


class WorkerDiedError(Exception):
    """The worker process ended while running a task."""

    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode
        super().__init__(describe_exit(returncode))


class Worker:
    def __init__(self, proc: asyncio.subprocess.Process, handle: ProcessHandle) -> None:
        self.proc = proc
        self.handle = handle
        self._ready: tuple[str, int, float, str | None] | None = None

    async def next_process(self, mark: str) -> ProcessHandle:
        """The handle of the process the worker forked for its next task (that task's alone:
        its own PID, process group and cgroup), marked ``mark``."""
        if self._ready is None:
            self._ready = await self._receive()
        _, pid, start_time, cgroup = self._ready
        self._ready = None
        return ProcessHandle(
            host=self.handle.host,
            pid=pid,
            pgid=pid,
            start_time=start_time,
            mark=mark,
            cgroup=cgroup,
            parent=self.handle.pid,
        )

    async def prepare(self, payload: bytes, directory: Path, mark: str) -> None:
        """Send the task: its process makes its directory and files, and waits for :meth:`run`."""
        await self._send((payload, str(directory), mark))

    async def run(self, directory: Path) -> TaskOutcome:
        """Let the prepared task run; its outcome."""
        await self._send(GO)
        answer = await self._receive()
        if answer[0] == "died":
            if (directory / OUTCOME).exists():  # written, then it could not say so
                return await read_outcome_soon(directory)
            return TaskOutcome.died(
                f"the task's process ended without an outcome: {describe_exit(answer[1])}",
                *read_output(directory),
            )
        _, outcome, stdout, stderr = answer
        if outcome is None:
            return await read_outcome_soon(directory)
        return TaskOutcome.from_runner(outcome, *read_output(directory, stdout, stderr))

    async def _receive(self) -> Any:
        assert self.proc.stdout is not None
        try:
            header = await self.proc.stdout.readexactly(HEADER.size)
            (size,) = HEADER.unpack(header)
            return pickle.loads(await self.proc.stdout.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError):
            raise WorkerDiedError(await self.proc.wait()) from None

    async def _send(self, message: Any) -> None:
        assert self.proc.stdin is not None
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.proc.stdin.write(HEADER.pack(len(data)) + data)
            await self.proc.stdin.drain()
        except (ConnectionError, BrokenPipeError):
            raise WorkerDiedError(await self.proc.wait()) from None

    def alive(self) -> bool:
        return self.proc.returncode is None

    async def stop(self) -> None:
        """End the worker (it ends the child it forked ahead and removes that one's cgroup);
        killed, with what it runs, if it does not end within 2 s."""
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
        self._marks = itertools.count()
        self._stopping: set[asyncio.Future[None]] = set()
        self._mark_prefix = uuid.uuid4().hex[:16]  # with a counter: unique, no syscall per task

    async def _spawn(self) -> Worker:
        env = config.child_environment()
        base = containment.cgroup_base()
        if base is not None:
            env[containment.CGROUP_BASE_VARIABLE] = base
        proc = await asyncio.create_subprocess_exec(
            self.python_path,
            "-m",
            "covalent_core.executors.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            limit=1 << 20,
        )
        return Worker(proc, ProcessHandle.of(proc.pid))

    async def _acquire(self) -> Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.alive():
                self._busy.add(worker)
                return worker
            await worker.stop()  # died while idle: its cgroup goes too
        if not self._idle and not self._busy:
            await asyncio.to_thread(containment.sweep_task_cgroups)  # of exited workers
        worker = await self._spawn()
        self._busy.add(worker)
        return worker

    def _release(self, worker: Worker) -> None:
        """Back to the idle ones, unless it was retired or has died."""
        if worker in self._busy:
            self._busy.discard(worker)
            if worker.alive():
                self._idle.append(worker)

    async def run(
        self,
        payload: bytes,
        directory: Path,
        started: Callable[[ProcessHandle], Awaitable[None]] | None = None,
        kill_grace: float = 1.0,
    ) -> TaskOutcome:
        """Run ``payload`` in a warm worker; ``started(handle)`` is awaited before it starts.

        ``directory`` (made by the task, owner-only) receives the task's start mark and
        outcome; the caller removes it. The task's process gets the payload at once and
        prepares, but runs it only once ``started`` returned, so a task never runs unless its
        handle was stored (if ``started`` raises, the worker is replaced, and the task's
        process has ended when this raises: what it made is there for the caller to remove).
        If the caller is cancelled while the task runs, the task's process and every process
        it started are killed (never its worker's next task: the handle is the task's own).
        """
        worker = await self._acquire()
        mark = f"{self._mark_prefix}{next(self._marks):x}"
        try:
            handle = await worker.next_process(mark)
            # The task's process prepares (directory, files) while ``started`` stores the handle.
            await worker.prepare(payload, directory, mark)
            if started is not None:
                await started(handle)
        except BaseException as exc:
            # Its prepared task never runs: the worker closes it and exits on end of input.
            # That exit is waited for: the task's process may not have made its directory
            # yet, and must not make it after the caller's cleanup removed it.
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._retire(worker))
            if isinstance(exc, WorkerDiedError):
                return TaskOutcome.died(str(exc))
            raise
        try:
            return await worker.run(directory)
        except WorkerDiedError as exc:
            return TaskOutcome.died(str(exc))
        except asyncio.CancelledError:
            # The task's own process is killed; its worker, which still has to say so, is
            # replaced rather than waited for.
            await asyncio.to_thread(kill_group, handle, kill_grace)
            self._retire(worker)
            raise
        finally:
            self._release(worker)

    def _retire(self, worker: Worker) -> asyncio.Future[None]:
        """Take ``worker`` out of the pool and stop it in the background; the stopping."""
        self._busy.discard(worker)
        stopping = asyncio.ensure_future(worker.stop())
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopping.discard)
        return stopping

    def runs(self, pid: int | None) -> bool:
        """True if ``pid`` is one of this pool's workers, alive."""
        return any(w.handle.pid == pid and w.alive() for w in (*self._idle, *self._busy))

    async def warm_up(self, count: int) -> None:
        """Start ``count`` idle workers ahead of need."""
        count = min(count, self.max_workers) - len(self._idle) - len(self._busy)
        if count > 0:
            self._idle.extend(await asyncio.gather(*(self._spawn() for _ in range(count))))

    async def close(self) -> None:
        """Stop every worker."""
        workers = self._idle + list(self._busy)
        self._idle, self._busy = [], set()
        await asyncio.gather(*(w.stop() for w in workers), *self._stopping, return_exceptions=True)


def read_output(
    directory: Path, stdout: bytes | None = None, stderr: bytes | None = None
) -> tuple[str, str]:
    """The task's stdout and stderr (those its worker did not send), as it left them in
    ``directory``; a big one is kept as a file among its dispatch's values (directories are
    named ``DISPATCH-NODE``), not read."""
    texts = []
    dispatch_id = directory.name.rsplit("-", 1)[0]
    for name, sent in ((STDOUT, stdout), (STDERR, stderr)):
        if sent is not None:
            texts.append(sent.decode(errors="replace"))
            continue
        try:
            texts.append(keep_big_text(directory / name, dispatch_id, f"{directory.name}.{name}"))
        except FileNotFoundError:
            texts.append("")
    return texts[0], texts[1]


def read_outcome(directory: Path) -> TaskOutcome:
    """The outcome a task left in ``directory``."""
    return TaskOutcome.from_runner((directory / OUTCOME).read_bytes(), *read_output(directory))


async def read_outcome_soon(directory: Path) -> TaskOutcome:
    """:func:`read_outcome`, in a thread only when the file is big.

    Handing a small read to a thread costs more than the read: the loop and the thread then
    take turns on the GIL, which on a busy machine adds milliseconds per task.
    """
    if (directory / OUTCOME).stat().st_size <= INLINE_READ_MAX:
        return read_outcome(directory)
    return await asyncio.to_thread(read_outcome, directory)


def started_at(directory: Path) -> float | None:
    """When the worker began the task in ``directory`` (None: it never did)."""
    try:
        return (directory / STARTED).stat().st_mtime
    except FileNotFoundError:
        return None


async def reattach_worker(handle: ProcessHandle, directory: Path) -> TaskOutcome | None:
    """Wait for a task a dead dispatcher had sent to a worker; its outcome, once written.

    Returns None if the worker never began the task (it exited on the closed pipe before the
    payload arrived): the task may be started again. Raises
    :class:`~covalent_core.errors.JobLostError` if the worker began it and is gone without an
    outcome.
    """
    delay = REATTACH_POLL_START
    while True:
        if (directory / OUTCOME).exists():
            return await read_outcome_soon(directory)
        if not await asyncio.to_thread(handle.alive):
            if (directory / OUTCOME).exists():
                return await read_outcome_soon(directory)
            if started_at(directory) is None:
                return None
            raise JobLostError(
                f"worker process {handle.pid} on {handle.host} ended without leaving an outcome "
                f"in {directory} while no dispatcher was running (killed from outside, or the "
                "machine restarted)"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, REATTACH_POLL_MAX)
