"""Warm worker processes that run tasks in packs, each pack a killable process of its own.

A worker is a Python interpreter that has already started (and imported what earlier tasks
imported), so a task costs no start-up. For each pack of tasks it forks a process of its
own (its own process group and cgroup) that runs them one after the other (see
:mod:`.pack`). A pack is one task, or the tasks of one :class:`~.base.Batch` (the
dispatcher admits tasks of one dispatch together when more are ready than workers are
free); packs wait in the pool's queue until a worker is free. Used by the local executor,
and by executors that run user code locally (building a quantum program, say).

Every task is given a directory of its own, where its pack marks that it started and
leaves its outcome: a task whose dispatcher died finishes there, and
:func:`reattach_worker` collects it later. A task's job handle names its pack's process,
which runs it only while the directory says so: a cancel that comes before it started
withdraws it, one that comes after it ended signals nothing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import pickle
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import config
from ..errors import JobLostError
from ..sdk import containment
from ..sdk.base import Batch, TaskOutcome
from ..sdk.processes import ProcessHandle, describe_exit, kill_group
from ..sdk.protocol import (
    GO,
    HEADER,
    OUTCOME,
    STARTED,
    STDERR,
    STDOUT,
    PackTask,
    TaskState,
    frame,
    task_state,
)
from ..values import keep_big_text
from . import prespawn

INLINE_READ_MAX = 1 << 20  # outcome files up to this size are read on the event loop
# How often a re-attached task's process is looked at, at first and at most.
REATTACH_POLL_START = 0.02
REATTACH_POLL_MAX = 0.5
PACK_MAX = 32
"""The most tasks one pack runs."""

Started = Callable[[ProcessHandle], Awaitable[None]]


class WorkerDiedError(Exception):
    """The worker process ended while running a pack."""

    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode
        super().__init__(describe_exit(returncode))


@dataclass(eq=False)
class PoolTask:
    """A task given to the pool: queued, then in a pack, then done (its ``future``)."""

    payload: bytes
    directory: Path
    started: Started | None
    future: asyncio.Future[TaskOutcome]
    group: str | None = None
    title: str = ""
    """The process's title while it runs the task (``ps`` shows it)."""
    handle: ProcessHandle | None = field(default=None)
    placed: asyncio.Future[None] = field(default_factory=asyncio.Future)
    """Done once the process that runs it is known (its ``handle``), or it never will be."""


class Worker:
    def __init__(self, proc: asyncio.subprocess.Process, handle: ProcessHandle) -> None:
        self.proc = proc
        self.handle = handle
        self.group: str | None = None
        """The group whose last batch's process waits in this worker for more."""

    async def start_batch(
        self, group: str | None, tasks: list[PackTask]
    ) -> tuple[int, float, str | None]:
        """Give the worker a batch (in one write: it prepares at once); the PID, start time
        and cgroup of the process that will run it."""
        await self.send_frames([("next", group), ("tasks", tasks)])
        _, pid, start_time, cgroup = await self.receive()
        return pid, start_time, cgroup

    async def receive(self) -> Any:
        """The worker's next frame."""
        assert self.proc.stdout is not None
        try:
            header = await self.proc.stdout.readexactly(HEADER.size)
            (size,) = HEADER.unpack(header)
            return pickle.loads(await self.proc.stdout.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError):
            raise WorkerDiedError(await self.proc.wait()) from None

    async def send(self, message: Any) -> None:
        """Send the worker one frame."""
        await self.send_frames([message])

    async def send_frames(self, messages: list[Any]) -> None:
        """Send the worker frames, in one write."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(b"".join(frame(m) for m in messages))
            await self.proc.stdin.drain()
        except (ConnectionError, BrokenPipeError):
            raise WorkerDiedError(await self.proc.wait()) from None

    @classmethod
    async def adopt(cls, popen: subprocess.Popen[bytes]) -> Worker:
        """A worker started before the event loop (see :mod:`.prespawn`)."""
        process = _Adopted(popen)
        await process.connect()
        return cls(process, ProcessHandle.of(popen.pid))  # type: ignore[arg-type]

    def alive(self) -> bool:
        return self.proc.returncode is None

    async def stop(self) -> None:
        """End the worker (it ends the process it forked ahead and removes that one's
        cgroup); killed, with what it runs, if it does not end within 2 s."""
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 2)
            except asyncio.TimeoutError:
                await asyncio.to_thread(kill_group, self.handle, 0.5)
                await self.proc.wait()


WAIT_POLL = 0.02
"""Seconds between two looks at whether an adopted worker has exited."""


class _Adopted:
    """A ``subprocess.Popen`` seen as an asyncio subprocess: its pipes as streams."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout: asyncio.StreamReader | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20, loop=loop)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop), self._popen.stdout
        )
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), loop=loop),
            self._popen.stdin,
        )
        self.stdin = asyncio.StreamWriter(transport, protocol, None, loop)
        self.stdout = reader

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    async def wait(self) -> int:
        """Its exit status, once it exited: polled, so that no thread of the loop's pool is
        held for as long as the worker runs."""
        while (code := self._popen.poll()) is None:
            await asyncio.sleep(WAIT_POLL)
        return code


class WorkerPool:
    """Up to ``max_workers`` warm workers (``python -m covalent_core.local.worker``);
    ``packing``: the tasks of a batch share a process (else one process per task)."""

    def __init__(self, python_path: str, max_workers: int = 16, *, packing: bool = True) -> None:
        self.python_path = python_path
        self.max_workers = max_workers
        self.packing = packing and containment.cgroup_base() is not None
        self._queue: collections.deque[list[PoolTask]] = collections.deque()
        """Packs waiting for a worker."""
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._spawning = 0
        self._marks = itertools.count()
        self._background: set[asyncio.Future[Any]] = set()
        self._mark_prefix = uuid.uuid4().hex[:16]  # with a counter: unique, no syscall per task

    async def run(
        self,
        payload: bytes,
        directory: Path,
        started: Started | None = None,
        kill_grace: float = 1.0,
        *,
        batch: Batch | None = None,
        key: int = 0,
        group: str | None = None,
        title: str = "",
    ) -> TaskOutcome:
        """Run ``payload`` in a warm worker; ``started(handle)`` is awaited before it starts.

        ``directory`` (made by the task's process, owner-only) receives the task's start
        mark and outcome; the caller removes it. The task's process gets the payload at once
        and prepares, but runs it only once ``started`` returned, so a task never runs
        unless its handle was stored (if ``started`` raises, this raises it once the task's
        process has given the task up: what it made is there for the caller to remove).
        ``batch``: the tasks to run with this one as one pack, once all have come (``key``:
        this task's in it). ``group`` (a dispatch): the process that ran this group's last
        tasks runs this one too, when it waits for more (None: a process of its own).
        ``title``: the process's title while it runs this task. If
        the caller is cancelled, the task is taken back from its batch or the queue,
        withdrawn from its pack, or, while it runs, killed with every process it started.
        """
        task = PoolTask(
            payload,
            directory,
            started,
            asyncio.get_running_loop().create_future(),
            group if self.packing else None,
            title,
        )
        if batch is not None and batch.size > 1 and self.packing:
            batch.arrive(task, self._enqueue)
        else:
            self._enqueue([task])
        try:
            return await asyncio.shield(task.future)
        except asyncio.CancelledError:
            if batch is not None and batch.depart(task, key):
                pass
            elif any(task in pack for pack in self._queue):
                for pack in self._queue:
                    if task in pack:
                        pack.remove(task)
                self._queue = collections.deque(pack for pack in self._queue if pack)
            else:
                # Given to a worker: once its process is known, the task is withdrawn from
                # it, or killed with it while it runs, before the caller cleans up.
                with contextlib.suppress(BaseException):
                    await asyncio.shield(task.placed)
                if task.handle is not None and not task.future.done():
                    await asyncio.to_thread(kill_group, task.handle, kill_grace)
            raise

    def _enqueue(self, tasks: list[PoolTask]) -> None:
        self._queue.append(tasks)
        self._pump()

    # -- running packs ------------------------------------------------------------------

    def _pump(self) -> None:
        """Give queued packs to free workers (starting workers up to ``max_workers``)."""
        while self._queue:
            spare = self.max_workers - len(self._idle) - len(self._busy) - self._spawning
            if not self._idle and spare <= 0:
                return
            tasks = self._queue.popleft()
            if self._idle:
                # The worker whose waiting process ran this group's last tasks, if one has.
                group = tasks[0].group
                worker = next(
                    (w for w in self._idle if group is not None and w.group == group),
                    self._idle[-1],
                )
                self._idle.remove(worker)
                if not worker.alive():
                    self._queue.appendleft(tasks)
                    self._retire(worker)
                    continue
                self._busy.add(worker)
                self._start(self._run_pack(worker, tasks))
            else:
                self._spawning += 1
                self._start(self._spawn_and_run(tasks))

    def _start(self, coroutine: Awaitable[Any]) -> None:
        future = asyncio.ensure_future(coroutine)
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    async def _spawn_and_run(self, tasks: list[PoolTask]) -> None:
        try:
            if not self._idle and not self._busy:
                await asyncio.to_thread(containment.sweep_task_cgroups)  # of exited workers
            worker = await self._spawn()
        except BaseException as exc:
            for task in tasks:
                if not task.future.done():
                    task.future.set_exception(exc)
            raise
        finally:
            self._spawning -= 1
        self._busy.add(worker)
        await self._run_pack(worker, tasks)

    async def _spawn(self) -> Worker:
        early = prespawn.take(self.python_path)
        if early is not None:
            return await Worker.adopt(early)
        env = config.child_environment()
        base = containment.cgroup_base()
        if base is not None:
            env[containment.CGROUP_BASE_VARIABLE] = base
        proc = await asyncio.create_subprocess_exec(
            self.python_path,
            "-m",
            "covalent_core.local.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            limit=1 << 20,
        )
        return Worker(proc, ProcessHandle.of(proc.pid))

    # -- running a pack -----------------------------------------------------------------

    async def _run_pack(self, worker: Worker, tasks: list[PoolTask]) -> None:
        """Run ``tasks`` as one pack on ``worker``, settling each task's future."""
        pending = dict(enumerate(tasks))
        group = tasks[0].group
        try:
            marks = [f"{self._mark_prefix}{next(self._marks):x}" for _ in tasks]
            batch = [
                (t.payload, str(t.directory), m, t.title) for t, m in zip(tasks, marks, strict=True)
            ]
            pid, start_time, cgroup = await worker.start_batch(group, batch)
            for task, mark in zip(tasks, marks, strict=True):
                # A process that may run other tasks (of its group) is signalled for this
                # one only while it runs it (``pack``).
                task.handle = ProcessHandle(
                    host=worker.handle.host, pid=pid, pgid=pid, start_time=start_time,
                    mark=mark, cgroup=cgroup, parent=worker.handle.pid,
                    dir=str(task.directory), pack=group is not None,
                )  # fmt: skip
                _placed(task)
            # The tasks' processes prepare while their handles are stored (in one commit).
            stored = await asyncio.gather(*(_store(t) for t in tasks), return_exceptions=True)
            refused = {i: r for i, r in enumerate(stored) if isinstance(r, BaseException)}
            if len(refused) == len(tasks):
                # Nothing of this pack runs: its process is ended now rather than waited
                # for (however slow it is), so that it can make nothing after the callers
                # cleaned up.
                alone = dataclasses.replace(tasks[0].handle, pack=False)  # type: ignore[arg-type]
                await asyncio.to_thread(kill_group, alone, 0.2)
                for index, exc in refused.items():
                    pending.pop(index).future.set_exception(exc)
            await worker.send((GO, sorted(refused)))
            unrun: list[PoolTask] = []
            while True:
                answer = await worker.receive()
                kind = answer[0]
                if kind == "idle":
                    worker.group = group  # its process waits for more of this group
                    break
                if kind == "ended":
                    worker.group = None
                    for index in answer[1]:  # never started: they go back to the queue
                        task = pending.pop(index, None)
                        if task is not None and not task.future.done():
                            task.handle = None
                            task.placed = asyncio.get_running_loop().create_future()
                            unrun.append(task)
                    if unrun:
                        self._queue.appendleft(unrun)
                    break
                task = pending.pop(answer[1], None)
                if task is None or task.future.done():
                    continue
                await _settle(task, answer, refused)
        except WorkerDiedError as exc:
            self._busy.discard(worker)
            for task in pending.values():
                self._start(self._after_worker_died(task, exc))
            pending.clear()
        except BaseException as exc:  # the pool is closing
            self._retire(worker)
            for task in pending.values():
                if not task.future.done():
                    task.future.set_exception(exc)
            raise
        else:
            self._release(worker)
        finally:
            for task in tasks:
                if task.handle is not None or task.future.done():
                    _placed(task)  # whatever happened, waiting for it is over
            self._pump()

    async def _after_worker_died(self, task: PoolTask, exc: WorkerDiedError) -> None:
        """The worker was killed from outside: its pack's process runs on, so each of its
        tasks is waited for by its handle, as after a dispatcher's death; one that never
        started goes back to the queue."""
        if task.future.done():
            return
        outcome = None
        if task.handle is not None:
            try:
                outcome = await reattach_worker(task.handle, task.directory)
            except JobLostError as lost:
                outcome = TaskOutcome.died(f"{exc} while running the task ({lost})")
        if task.future.done():
            return
        if outcome is None:
            task.handle = None
            task.placed = asyncio.get_running_loop().create_future()
            self._queue.appendleft([task])
            self._pump()
        else:
            task.future.set_result(outcome)

    def _release(self, worker: Worker) -> None:
        """Back to the idle ones, unless it was retired or has died."""
        if worker in self._busy:
            self._busy.discard(worker)
            if worker.alive():
                self._idle.append(worker)

    def _retire(self, worker: Worker) -> asyncio.Future[None]:
        """Take ``worker`` out of the pool and stop it in the background; the stopping."""
        self._busy.discard(worker)
        stopping = asyncio.ensure_future(worker.stop())
        self._background.add(stopping)
        stopping.add_done_callback(self._background.discard)
        return stopping

    def runs(self, pid: int | None) -> bool:
        """True if ``pid`` is one of this pool's workers, alive."""
        return any(w.handle.pid == pid and w.alive() for w in (*self._idle, *self._busy))

    async def warm_up(self, count: int) -> None:
        """Start ``count`` idle workers ahead of need."""
        count = min(count, self.max_workers) - len(self._idle) - len(self._busy)
        if count > 0:
            self._idle.extend(await asyncio.gather(*(self._spawn() for _ in range(count))))
            self._pump()

    async def close(self) -> None:
        """Stop every worker."""
        workers = self._idle + list(self._busy)
        self._idle, self._busy = [], set()
        for pack in self._queue:
            for task in pack:
                if not task.future.done():
                    task.future.cancel()
        self._queue.clear()
        await asyncio.gather(
            *(w.stop() for w in workers), *self._background, return_exceptions=True
        )


def _placed(task: PoolTask) -> None:
    if not task.placed.done():
        task.placed.set_result(None)


async def _store(task: PoolTask) -> None:
    """Store the task's handle (its ``started`` callback), before its process may run it."""
    if task.started is not None:
        assert task.handle is not None
        await task.started(task.handle)


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
    """When the worker began the task in ``directory`` (None: it never did, or it was
    withdrawn before it started)."""
    if task_state(str(directory)) is TaskState.WITHDRAWN:
        return None
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


async def _settle(
    task: PoolTask, answer: tuple[Any, ...], refused: dict[int, BaseException]
) -> None:
    """Settle a packed task's future from its process's report (done, withdrawn or died)."""
    kind = answer[0]
    if kind == "done":
        _, _, outcome, stdout, stderr = answer
        if outcome is None:
            result = await read_outcome_soon(task.directory)
        else:
            result = TaskOutcome.from_runner(outcome, *read_output(task.directory, stdout, stderr))
        task.future.set_result(result)
    elif kind == "withdrawn" and answer[1] in refused:
        task.future.set_exception(refused[answer[1]])
    elif kind == "withdrawn":
        task.future.set_result(TaskOutcome.died("the task was cancelled before it started"))
    else:  # died
        task.future.set_result(
            TaskOutcome.died(
                f"the task's process ended without an outcome: {describe_exit(answer[2])}",
                *read_output(task.directory),
            )
        )
