"""A pack: one process forked by a warm worker, running tasks of one dispatch one after another.

Covalent packs tasks into one job, and Dask runs many in one worker process: both avoid the
cost of a process per task. A pack does the same and keeps each task apart from the others:

- Before each task the process is reset to the state it was forked in: environment
  variables, working directory, import path, signal handlers, the default socket timeout,
  standard streams, umask, resource limits, warnings filters and the root logger's handlers;
  descriptors a task left open are closed. Only the module state of the user's code may carry
  over, as in Covalent and Dask. A process that cannot be reset (a task left a thread running,
  or lowered a hard resource limit) takes no further task: the rest of its pack go back to the
  queue.
- Every process a task started is killed when it ends (the pack's cgroup, of which the pack
  process is the only other member; and its own children, it being their subreaper).
- Each task has its own directory, output files and outcome (see :mod:`.protocol`), and is
  reported as soon as it ends. A cancel of one task kills the pack only while it runs that
  task; one that comes before the task started withdraws it.

``isolation="task"`` on the local executor makes every pack a single task.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import resource
import signal
import socket
import sys
import threading
import time
import warnings
from typing import Any

import setproctitle

from ..sdk import containment
from ..sdk.protocol import (
    DONE,
    INLINE_MAX,
    INLINE_STREAM_MAX,
    READY,
    REPORT,
    STARTED,
    STDERR,
    STDOUT,
    WITHDRAWN,
    WITHDRAWN_REPORT,
    PackTask,
    mark_file,
    read_frame,
    write_all,
    write_outcome,
)
from ..sdk.runner import describe, encode_environ, execute, failure, set_environ

LIMITS = [
    getattr(resource, name)
    for name in dir(resource)
    if name.startswith("RLIMIT_") and isinstance(getattr(resource, name), int)
]
SIGNALS = [
    s
    for s in signal.Signals
    if s not in (signal.SIGKILL, signal.SIGSTOP) and s < getattr(signal, "NSIG", 65)
]


class ProcessState:
    """What a task may change in its process, as it was before the first one ran."""

    def __init__(self, keep_fds: set[int]) -> None:
        self.environ = dict(os.environ)
        self.encoded = encode_environ(self.environ)
        self.cwd = os.getcwd()
        self.path = list(sys.path)
        self.handlers = {s: signal.getsignal(s) for s in SIGNALS}
        self.timeout = socket.getdefaulttimeout()
        self.umask = os.umask(0o077)
        os.umask(self.umask)
        self.limits = {limit: resource.getrlimit(limit) for limit in LIMITS}
        self.warnings = list(warnings.filters)
        root = logging.getLogger()
        self.logging = (list(root.handlers), root.level)
        self.recursion = sys.getrecursionlimit()
        self.mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        self.fds = _open_fds() | keep_fds | {0, 1, 2}
        self.streams = (sys.stdin, sys.stdout, sys.stderr)
        self.title = setproctitle.getproctitle()

    def restore(self) -> str | None:
        """Put the process back as it was; why it cannot be reused, or None."""
        if threading.active_count() > 1 or len(os.listdir("/proc/self/task")) > 1:
            return "a task left a thread running"
        for limit, (soft, hard) in self.limits.items():
            if resource.getrlimit(limit) != (soft, hard):
                try:
                    resource.setrlimit(limit, (soft, hard))
                except (ValueError, OSError):
                    return "a task lowered a hard resource limit"
        set_environ(self.environ, self.encoded)
        with contextlib.suppress(OSError):
            os.chdir(self.cwd)
        sys.path[:] = self.path
        for number, handler in self.handlers.items():
            if signal.getsignal(number) is not handler and handler is not None:
                with contextlib.suppress(OSError, ValueError, TypeError):
                    signal.signal(number, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)
        signal.alarm(0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        socket.setdefaulttimeout(self.timeout)
        os.umask(self.umask)
        warnings.filters[:] = self.warnings
        getattr(warnings, "_filters_mutated", lambda: None)()
        root = logging.getLogger()
        root.handlers[:] = self.logging[0]
        root.setLevel(self.logging[1])
        sys.setrecursionlimit(self.recursion)
        setproctitle.setproctitle(self.title)
        for fd in _open_fds() - self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._streams()
        return None

    def _streams(self) -> None:
        """The standard streams are the ones the pack began with, open on descriptors 0-2."""
        for index, name in enumerate(("stdin", "stdout", "stderr")):
            stream = self.streams[index]
            if getattr(sys, name) is not stream or stream.closed:
                if stream.closed:
                    mode = "r" if index == 0 else "w"
                    stream = io.TextIOWrapper(
                        io.FileIO(index, mode, closefd=False),
                        line_buffering=index != 0 and stream.line_buffering,
                        write_through=index != 0,
                    )
                setattr(sys, name, stream)
                setattr(sys, f"__{name}__", stream)


def _open_fds() -> set[int]:
    try:
        return {int(name) for name in os.listdir("/proc/self/fd")}
    except OSError:
        return set()


def make_directory(directory: str) -> bool:
    """Make the task's directory (owner-only) in its parent, which its caller made (and
    removes: one that is gone means the task was given up); True if this process made it."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        return False  # another attempt at this task made it (one that never started, say)
    return True


def unmake(directory: str) -> None:
    """Remove the directory of a task that will not run, if this process left it empty."""
    with contextlib.suppress(OSError):
        os.rmdir(directory)


def capture(directory: str, name: str, fd: int) -> None:
    """Point ``fd`` at the task's own ``name`` file (or nowhere if it cannot be made)."""
    try:
        target = os.open(  # readable too: the worker reads a small one back
            os.path.join(directory, name), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600
        )
    except OSError:
        target = os.open(os.devnull, os.O_WRONLY)
    os.dup2(target, fd)
    os.close(target)


def small_stream(fd: int) -> bytes | None:
    """What the task wrote to ``fd`` (its own file), if small; None: read the file."""
    try:
        size = os.fstat(fd).st_size
        if size > INLINE_STREAM_MAX:
            return None
        return os.pread(fd, size, 0) if size else b""
    except OSError:
        return None


class Pack:
    """The process running packs of one dispatch's tasks, one batch after another (in that
    process)."""

    def __init__(self, report: int, cgroup: str | None, frames: int) -> None:
        self.report: int | None = report
        self.cgroup = cgroup
        self.pipes = {fd: _identity(fd) for fd in (report, frames)}
        self.state: ProcessState | None = None
        self.tasks: list[PackTask] = []
        self.made: list[bool] = []
        self.trouble: dict[int, OSError] = {}

    def prepare(self, tasks: list[PackTask]) -> None:
        """Make every task's directory (while the dispatcher stores their handles)."""
        self.tasks, self.made, self.trouble = tasks, [], {}
        for index, (_, directory, _, _) in enumerate(tasks):
            try:
                self.made.append(make_directory(directory))
            except OSError as exc:  # a full disk, say: the task fails saying so, never runs
                self.made.append(False)
                self.trouble[index] = exc

    def discard(self, indices: set[int]) -> None:
        """The tasks at ``indices`` will never run: nothing of them is left."""
        for index in indices:
            if self.made[index]:
                unmake(self.tasks[index][1])

    def run(self, skip: set[int]) -> bool:
        """Run every task but those of ``skip``, in order, resetting the process after each;
        False as soon as it cannot be reset (it must then take no further task)."""
        if self.state is None:
            self.state = ProcessState({self.report} if self.report is not None else set())
        for index in range(len(self.tasks)):
            if index in skip:
                continue
            self._run_one(index)
            self._end_task()
            if self.state.restore() is not None or not self.pipes_intact():
                return False  # the worker sends the rest back to the queue
        return True

    def pipes_intact(self) -> bool:
        """False if a task closed or replaced this process's own pipes (it cannot then
        report, nor hear of another batch)."""
        return all(_same(fd, identity) for fd, identity in self.pipes.items())

    def _run_one(self, index: int) -> None:
        payload, directory, mark, title = self.tasks[index]
        trouble = self.trouble.get(index)
        if trouble is None:
            # Marked started first, then checked: a cancel that saw no start mark has
            # withdrawn it by now, and one that saw it kills this process.
            with contextlib.suppress(OSError):
                mark_file(directory, STARTED)
            if os.path.exists(os.path.join(directory, WITHDRAWN)):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, STARTED))
                self._send(REPORT.pack(WITHDRAWN_REPORT, index, -1, -1, -1))
                return
        os.environ[containment.MARK_VARIABLE] = mark  # kept by the runner's environment
        if title:
            setproctitle.setproctitle(title)  # reset with the process after the task
        capture(directory, STDOUT, 1)
        capture(directory, STDERR, 2)
        if trouble is not None:
            outcome = failure(
                f"the task could not start: its directory {directory} could not be made "
                f"({describe(trouble)}). Free some space there (or point "
                "COVALENT_CORE_DATA_DIR elsewhere) and run it again."
            )
        else:
            outcome = execute(payload)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        written = trouble is None and write_outcome(directory, outcome)
        parts = [outcome if not written or len(outcome) <= INLINE_MAX else None]
        parts += [small_stream(fd) for fd in (1, 2)]
        sizes = [-1 if part is None else len(part) for part in parts]
        data = REPORT.pack(DONE, index, *sizes) + b"".join(part or b"" for part in parts)
        self._send(data)

    def _send(self, data: bytes) -> None:
        """Report to the worker; a worker that is gone (killed) is not told: the tasks run
        on, and leave their outcomes for the dispatcher, which re-attaches to them."""
        if self.report is None:
            return
        try:
            write_all(self.report, data)
        except OSError:
            with contextlib.suppress(OSError):
                os.close(self.report)
            self.report = None

    def _end_task(self) -> None:
        """Kill what the task that just ended left running: the pack's cgroup but this
        process, and what was re-parented here (its subreaper). Its output files are let go
        (their directory is removed once the dispatcher has what it needs)."""
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        me = os.getpid()
        for _ in range(500):
            left = (containment.cgroup_members(self.cgroup) if self.cgroup else set()) - {me}
            left |= containment.subtree(me)
            left = {p for p in left if _alive(p)}
            if not left:
                break
            containment.kill_all(left)
            _reap()
            time.sleep(0.002)
        _reap()


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _same(fd: int, identity: tuple[int, int] | None) -> bool:
    return identity is not None and _identity(fd) == identity


def _alive(pid: int) -> bool:
    info = containment.process_stat(pid)
    return info is not None and info[0] not in ("Z", "X")


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def serve(stream: Any, report: int, cgroup: str | None) -> None:
    """The pack process: serve batches of tasks, each ``("tasks", [...])`` then
    ``("go", skip)``, until the worker closes the pipe (or the process cannot be reset);
    never returns. Each batch ends with a ``READY`` report: the process is reset and waits."""
    code = 0
    try:
        pack = Pack(report, cgroup, stream.fileno())
        while True:
            message = read_frame(stream)
            if message is None:
                break
            pack.prepare(message[1])
            go = read_frame(stream)
            if go is None:
                # Never started (the handles were not stored, or the dispatcher went away):
                # nothing of them is left, however late this process got here.
                pack.discard(set(range(len(pack.tasks))))
                break
            skip = set(go[1])
            pack.discard(skip)
            for index in sorted(skip):  # given up at once: the dispatcher may clean them up
                pack._send(REPORT.pack(WITHDRAWN_REPORT, index, -1, -1, -1))
            if not pack.run(skip):
                break
            pack._send(REPORT.pack(READY, -1, -1, -1, -1))
    except BaseException:
        code = 70
    finally:
        os._exit(code)
