"""The built-in local executor: tasks run in processes forked by warm workers.

Workers are started on demand and reused, so a task costs no interpreter start-up. Each task
runs in a process a worker forked for it, or for a pack of tasks of its dispatch (see
:mod:`.pool` and :mod:`.pack`), in a process group and cgroup of that process's own;
cancelling a task kills that process (SIGTERM, a grace period, then SIGKILL) while it runs
the task, and withdraws the task if it has not started. A worker is not the dispatcher's
child in any way that matters: when the dispatcher dies, the tasks run on, leave their
outcomes in their directories (:func:`covalent_core.config.tasks_dir`) and the next
dispatcher collects them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from .. import config
from ..errors import ExecutorConfigError, JobLostError
from ..hookspecs import hookimpl
from ..permissions import private_open
from ..sdk import containment
from ..sdk.base import Executor, TaskContext, TaskOutcome
from ..sdk.processes import ProcessHandle, kill_group, kill_leftovers, terminate_first
from ..sdk.protocol import TASK_FILES
from ..values import read_text
from .pool import PACK_MAX, WorkerPool, read_output, reattach_worker, started_at

logger = logging.getLogger(__name__)

ISOLATIONS = ("pack", "task")
DEPS = "deps"
"""Under the data directory: with ``isolate_deps``, one directory of packages per dispatch."""


class LocalExecutor(Executor):
    """Runs tasks on this machine, each killable on its own.

    Options: ``max_workers`` (tasks at once; default: the CPUs this process may use, as
    Covalent's), ``cancel_grace`` (seconds between SIGTERM and SIGKILL, default 3),
    ``python_path`` (interpreter for every task; default: each task runs in the interpreter
    of the process that dispatched it, when that is on this machine). Covalent's
    local-executor options keep their meaning: ``workdir`` (the task's working directory,
    created if needed; default: the dispatching process's), ``create_unique_workdir`` (a
    subdirectory ``DISPATCH_ID/node_N`` of it per task), ``log_stdout``/``log_stderr``
    (append the task's output to these files; relative paths go under the data directory's
    ``results/DISPATCH_ID``), ``time_limit`` (seconds after which the task is stopped and
    fails; -1: none). ``cache_dir`` and ``retries`` are accepted and recorded, with no
    effect, as in Covalent. ``isolate_deps``: a task's ``DepsPip`` packages go into a
    directory of its dispatch's own (``deps/DISPATCH_ID`` under the data directory, first on
    the task's import path) rather than into the environment the workers run in.
    ``isolation``: ``"pack"`` (default) lets tasks of one dispatch run one after another in
    one forked process when more are ready than workers are free, the process reset between
    them (:mod:`.pack`; only the module state of user code carries over, as in Covalent and
    Dask); ``"task"`` forks a fresh process for every task.
    """

    short_name: ClassVar[str] = "local"
    cancel_bound: ClassVar[float] = 5.0
    handle_before_start: ClassVar[bool] = True  # the pool sends the payload after the handle
    jobs_outlive_host: ClassVar[bool] = False  # a local task dies with the machine

    def __init__(
        self,
        max_workers: int | None = None,
        cancel_grace: float = 3.0,
        python_path: str | None = None,
        workdir: str = "",
        create_unique_workdir: bool = False,
        log_stdout: str = "",
        log_stderr: str = "",
        cache_dir: str = "",
        time_limit: float = -1,
        retries: int = 0,
        isolate_deps: bool = False,
        isolation: str = "pack",
    ) -> None:
        super().__init__()
        if isolation not in ISOLATIONS:
            raise ExecutorConfigError(
                f"isolation must be 'pack' (tasks of a dispatch may share a process, reset "
                f"between them) or 'task' (a fresh process for each), not {isolation!r}"
            )
        self.isolation = isolation
        max_workers = default_workers() if max_workers is None else max_workers
        if max_workers < 1:
            raise ExecutorConfigError(f"max_workers must be at least 1, not {max_workers}")
        self.max_workers = max_workers
        self.cancel_grace = cancel_grace
        self.python_path = python_path or sys.executable
        self.workdir = workdir
        self.create_unique_workdir = create_unique_workdir
        self.log_stdout = log_stdout
        self.log_stderr = log_stderr
        self.cache_dir = cache_dir
        self.time_limit = time_limit
        self.retries = retries
        self.isolate_deps = isolate_deps
        self.pool = WorkerPool(self.python_path, max_workers, packing=isolation == "pack")
        self._pools = {self.python_path: self.pool}
        """Workers by interpreter: a task runs in the one of the process that dispatched it."""
        self._named_python = python_path is not None
        self._tasks_dir: Path | None = None
        self._remover = DirectoryRemover()
        self._struck: dict[str, dict[int, int] | None] = {}
        """Handles :meth:`cancel_at_once` sent the first signal to, and what it reached."""

    @classmethod
    def concurrency_for(cls, config: dict[str, Any]) -> int:
        """One pack per worker: ``max_workers``."""
        return int(config.get("max_workers") or default_workers())

    @classmethod
    def pack_size(cls, config: dict[str, Any]) -> int:
        """Up to :data:`~.pool.PACK_MAX` tasks per pack; one with ``isolation="task"`` (or
        where a pack cannot be contained: no cgroups)."""
        if config.get("isolation", "pack") != "pack" or containment.cgroup_base() is None:
            return 1
        return PACK_MAX

    async def pickle(self, task: TaskContext) -> None:
        """The payload, set to run in ``workdir`` when one is configured."""
        workdir = None
        if self.workdir:
            path = Path(self.workdir).expanduser()
            if self.create_unique_workdir:
                path = path / task.dispatch_id / f"node_{task.node_id}"
            path.mkdir(parents=True, exist_ok=True)
            workdir = str(path.resolve())
        target = None
        if self.isolate_deps:
            target = str(config.data_dir() / DEPS / task.dispatch_id)
        task.payload = task.build_payload(cwd=workdir, local=True, pip_target=target)

    def task_dir(self, task: TaskContext) -> Path:
        """The task's own directory: start mark and outcome, kept until cleanup."""
        if self._tasks_dir is None:
            self._tasks_dir = config.tasks_dir()  # made once: the service exits if it goes
        return self._tasks_dir / f"{task.dispatch_id}-{task.node_id}"

    async def run(self, task: TaskContext) -> None:
        """Hand the payload to a warm worker; its handle is stored before the task starts."""
        assert task.payload is not None
        directory = task.state["dir"] = self.task_dir(task)

        async def started(handle: ProcessHandle) -> None:
            task.check_cancelled("run")  # (queued meanwhile): never started, no handle
            task.state["handle"] = handle  # for cleanup, which need not parse it again
            await task.set_job_handle(handle.to_dict())
            task.check_cancelled("run")

        running = self.pool_for(task.python).run(
            task.payload,
            directory,
            started,
            kill_grace=self.cancel_grace,
            batch=task.batch,
            key=task.node_id,
            group=task.dispatch_id,
            title=f"covalent-core task {task.node_id} ({task.name}) of {task.dispatch_id}",
        )
        if self.time_limit is None or self.time_limit <= 0:
            task.state["outcome"] = await running
            return
        try:
            task.state["outcome"] = await asyncio.wait_for(running, self.time_limit)
        except asyncio.TimeoutError:
            task.state["outcome"] = self._time_limit_reached()

    def _time_limit_reached(self) -> TaskOutcome:
        return TaskOutcome.died(
            f"the task reached the executor's time_limit of {self.time_limit:g} s and was "
            "stopped (use timeout= on the electron to have it cancelled instead)"
        )

    async def reattach(self, task: TaskContext, job_handle: str | None) -> bool:
        """Wait for the worker a dead dispatcher had given the task, and take its outcome.

        A task is sent to its worker only after its handle was stored, so without a handle it
        never started (False). ``time_limit`` still counts from when the task began.
        """
        if job_handle is None:
            return False
        handle = ProcessHandle.from_json(job_handle)
        if handle.host != socket.gethostname():
            # Another host's service (sharing a PostgreSQL store) took the dispatch over: the
            # task's process is not on this machine, so it can be neither watched nor stopped
            # from here, and starting it again could run it twice.
            raise JobLostError(
                f"the task ran as process {handle.pid} on host {handle.host}, whose dispatcher "
                f"service stopped; this host ({socket.gethostname()}) cannot watch or stop a "
                "local process of another machine, so it was not run again. Check that host "
                "and dispatch the task again if it is needed."
            )
        if handle.cgroup:
            # A service killed while it struck the task (a cancel freezes the task's cgroup
            # for a moment) left it frozen: it would wait forever.
            containment.freeze(handle.cgroup, False)
        directory = Path(json.loads(job_handle)["dir"])
        waiting = reattach_worker(handle, directory)
        began = started_at(directory)
        if self.time_limit is None or self.time_limit <= 0 or began is None:
            outcome = await waiting
        else:
            remaining = max(0.0, began + self.time_limit - time.time())
            try:
                outcome = await asyncio.wait_for(waiting, remaining)
            except asyncio.TimeoutError:
                await asyncio.to_thread(kill_group, handle, self.cancel_grace)
                outcome = self._time_limit_reached()
        if outcome is None:
            return False
        task.state["outcome"] = outcome
        return True

    async def fetch(self, task: TaskContext) -> None:
        """The outcome the worker left in the task's directory; nothing to download."""
        task.outcome = task.state.pop("outcome", None)
        if task.outcome is not None and (self.log_stdout or self.log_stderr):
            await asyncio.to_thread(self._write_logs, task, task.outcome)

    async def cleanup(self, task: TaskContext) -> None:
        """Remove the task's directory (with others, in one thread call: the file system may
        be slow to delete while the store commits), and kill what the task left running if
        its worker could not (it was killed, or the task ended while no dispatcher ran)."""
        directory = task.state.get("dir") or self.task_dir(task)
        if task.outcome is None and task.job_handle:
            # Stopped before it ended (cancelled, timed out): keep what it printed so far.
            with contextlib.suppress(OSError):
                task.streams = await asyncio.to_thread(read_output, directory)
        await self._remover.remove(directory)
        if task.job_handle:
            handle = task.state.get("handle") or ProcessHandle.from_json(task.job_handle)
            # A live worker of ours cleans up after its task itself.
            ours = any(pool.runs(handle.parent) for pool in self._pools.values())
            if not ours and not await asyncio.to_thread(handle.alive):
                await asyncio.to_thread(kill_leftovers, handle)

    def _write_logs(self, task: TaskContext, outcome: TaskOutcome) -> None:
        for name, text in ((self.log_stdout, outcome.stdout), (self.log_stderr, outcome.stderr)):
            if not name:
                continue
            path = Path(name).expanduser()
            if not path.is_absolute():
                path = config.data_dir() / "results" / task.dispatch_id / path
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with private_open(path, "a") as fh:
                fh.write(read_text(text) or "")

    def cancel_at_once(self, task_metadata: dict[str, Any], job_handle: str) -> None:
        """The first SIGTERM, sent now from the loop (see :func:`~.processes.terminate_first`),
        before the dispatcher stores the request or does anything else."""
        handle = ProcessHandle.from_json(job_handle)
        self._struck[job_handle] = terminate_first(handle)

    async def cancel(self, task_metadata: dict[str, Any], job_handle: str) -> bool:
        """Kill the task's own process and all it started (its process group, descendants and
        cgroup), checking start times so that a reused PID is spared; a handle whose task has
        ended finds nothing to signal, whatever its worker runs now."""
        handle = ProcessHandle.from_json(job_handle)
        if job_handle in self._struck:
            signalled = self._struck.pop(job_handle)
        else:
            signalled = terminate_first(handle)
        return await asyncio.to_thread(kill_group, handle, self.cancel_grace, signalled=signalled)

    async def warm_up(self, count: int) -> None:
        """Start ``count`` idle workers ahead of need."""
        await self.pool.warm_up(count)

    async def close(self) -> None:
        """Stop every worker."""
        for pool in list(self._pools.values()):
            await pool.close()

    def pool_for(self, python: str | None) -> WorkerPool:
        """The workers a task runs in: those of ``python_path`` when it was given, else of
        the dispatching process's interpreter (``python``, when it is on this host and can
        be run), else of the service's."""
        if self._named_python or not python or not os.access(python, os.X_OK):
            return self.pool
        pool = self._pools.get(python)
        if pool is None:
            packing = self.isolation == "pack"
            pool = self._pools[python] = WorkerPool(python, self.max_workers, packing=packing)
        return pool

    @property
    def interpreters(self) -> list[str]:
        """The interpreters this executor's workers run (``service status`` lists them)."""
        return sorted(self._pools)


class DirectoryRemover:
    """Removes directories in a thread, those asked for while one batch runs in the next."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, asyncio.Future[None]]] = []
        self._running: asyncio.Task[None] | None = None

    async def remove(self, path: Path) -> None:
        """Return once ``path`` (and what is in it) is removed."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((path, done))
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().create_task(self._remove_pending())
        await done

    async def _remove_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(_remove_all, [path for path, _ in batch])
            finally:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)


def _remove_all(paths: list[Path]) -> None:
    for directory in paths:
        path = str(directory)  # joined as text: pathlib costs more than the system calls
        # What a worker leaves, removed by name (a fifth of rmtree's system calls); rmtree
        # for anything else that is there.
        for name in TASK_FILES:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}/{name}")
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError:
            shutil.rmtree(path, ignore_errors=True)


def default_workers() -> int:
    """How many tasks run at once by default: one per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@hookimpl
def covalent_executor_classes() -> list[type[Executor]]:
    """The local executor is registered like any plugin's."""
    return [LocalExecutor]
