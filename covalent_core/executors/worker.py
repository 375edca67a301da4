"""A warm worker of the local executor: a parent with the imports done that forks each task.

Started in its own session. Frames are an 8-byte big-endian length and a pickle; only this
parent speaks them, never a process that ran user code. For each task the worker forks a
child ahead of need and tells the dispatcher ``("ready", pid, start time, cgroup)``: that
child is the task's own process (its own process group, the subreaper of what the task
starts, alone in a new cgroup where the machine gives one; see :mod:`.containment`), and
those three are the task's job handle, so that a cancel can never reach the worker or the
task it runs next. The dispatcher sends ``(payload, directory, mark)``, then ``"go"`` once
it has stored the handle. The child starts clean (nothing of an earlier task: environment,
working directory, signal handlers, socket defaults, module state, standard streams). On the
first frame it makes ``directory`` and sends its output and errors to ``directory/stdout``
and ``stderr`` (while the dispatcher commits the handle); on ``go`` it marks
``directory/started``, runs the task and writes the outcome to ``directory/outcome``
(atomically). Without ``go`` (the dispatcher closed the pipe) the task never runs, and the
child removes the directory it made. The worker answers ``("done", outcome, stdout,
stderr)`` as soon as the child reports, with what is small inline (None: read it from its
file), then waits for the child's exit and kills whatever the task left running (its cgroup,
which it removes; and what was re-parented to the worker, which carries ``mark``) before it
forks the next child. If the child could not write the file (a full disk) the outcome comes
inline whatever its size; if the child died without one: ``("died", exit status)``.

The outcome lives in a file so that a task outlives the dispatcher: when the service dies
the worker waits for its task, cleans up after it and exits on the closed pipe, and the next
service reads the file (see :func:`covalent_core.executors.pool.reattach_worker`).
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import select
import struct
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import psutil

from covalent_core.executors import containment
from covalent_core.executors.runner import describe, execute, failure

HEADER = struct.Struct(">Q")
REPORT = struct.Struct(">qqq")  # a task's report: sizes of its outcome, stdout and stderr
INLINE_MAX = 1 << 20  # an outcome up to this size comes with the report
INLINE_STREAM_MAX = 1 << 16  # as does stdout or stderr up to this size
STARTED = "started"
OUTCOME = "outcome"
STDOUT = "stdout"
STDERR = "stderr"
TASK_FILES = (STARTED, OUTCOME, STDOUT, STDERR)
"""The files a task's directory holds (more only if something else wrote there)."""


def read_frame(stream: IO[bytes]) -> Any:
    """Read one frame, or return None at end of stream."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    chunks, remaining = [], size
    while remaining:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return pickle.loads(b"".join(chunks))


def write_frame(stream: IO[bytes], message: Any) -> None:
    """Write one frame and flush it."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def write_outcome(directory: str, outcome: bytes) -> bool:
    """Write the task's outcome file atomically (owner-only); False if it could not be."""
    path = os.path.join(directory, OUTCOME)
    try:
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as fh:
            fh.write(outcome)
        os.rename(path + ".tmp", path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path + ".tmp")
        return False
    return True


def _make_directory(directory: str) -> bool:
    """Make the task's directory (owner-only); True if this process made it."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        return False  # another attempt at this task made it (one that never started, say)
    except FileNotFoundError:
        os.makedirs(directory, 0o700, exist_ok=True)
    return True


def _unmake(directory: str) -> None:
    """Remove what this process made for a task that will not run: its own output files (not
    ones another attempt made under those names since) and the directory, if that is empty."""
    for fd, name in ((1, STDOUT), (2, STDERR)):
        path = os.path.join(directory, name)
        with contextlib.suppress(OSError):
            ours, there = os.fstat(fd), os.lstat(path)
            if (ours.st_dev, ours.st_ino) == (there.st_dev, there.st_ino):
                os.unlink(path)
    with contextlib.suppress(OSError):
        os.rmdir(directory)


def _capture(directory: str, name: str, fd: int) -> None:
    """Point ``fd`` at the task's own ``name`` file (or nowhere if it cannot be made)."""
    try:
        target = os.open(  # readable too: the task's worker reads a small one back
            os.path.join(directory, name), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600
        )
    except OSError:
        target = os.open(os.devnull, os.O_WRONLY)
    os.dup2(target, fd)
    os.close(target)


GO = "go"


def _child(
    payload: bytes,
    directory: str,
    mark: str,
    report: int,
    go: Callable[[], bool],
) -> None:
    """The forked task: prepare it, run it once ``go()`` says so, leave its outcome, say so
    on ``report``; never returns.

    ``report`` gets :data:`REPORT` (the sizes of the outcome, stdout and stderr that follow
    it, -1 for one only in its file) and those bytes: what is small comes along, so the
    dispatcher need not read the files; the outcome always does if its file could not be
    written (a full disk)."""
    code = 0
    try:
        os.environ[containment.MARK_VARIABLE] = mark  # kept by the runner's environment
        trouble = None
        try:
            made = _make_directory(directory)
        except OSError as exc:  # a full disk, say: the task fails saying so, never runs
            made, trouble = False, exc
        _capture(directory, STDOUT, 1)
        _capture(directory, STDERR, 2)
        if not go():
            # Never started (its handle was not stored, or the dispatcher went away): nothing
            # of it is left, however late this process got here (after the caller's cleanup).
            if made:
                _unmake(directory)
            os._exit(0)
        if trouble is not None:
            outcome = failure(
                f"the task could not start: its directory {directory} could not be made "
                f"({describe(trouble)}). Free some space there (or point "
                "COVALENT_CORE_DATA_DIR elsewhere) and run it again."
            )
        else:
            # Proof that the task began: without it, a next dispatcher knows it never ran.
            with contextlib.suppress(OSError):
                os.close(os.open(os.path.join(directory, STARTED), os.O_WRONLY | os.O_CREAT, 0o600))
            outcome = execute(payload)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        written = trouble is None and write_outcome(directory, outcome)
        parts = [outcome if not written or len(outcome) <= INLINE_MAX else None]
        parts += [_small_stream(fd) for fd in (1, 2)]
        sizes = [-1 if part is None else len(part) for part in parts]
        view = memoryview(REPORT.pack(*sizes) + b"".join(part or b"" for part in parts))
        while view:
            view = view[os.write(report, view) :]
    except BaseException:
        # The report could not be sent (the task closed its pipe, say): its outcome file, if
        # written, is what the dispatcher reads.
        code = 70
    finally:
        os._exit(code)


def _small_stream(fd: int) -> bytes | None:
    """What the task wrote to ``fd`` (its own file), if small; None: read the file."""
    try:
        size = os.fstat(fd).st_size
        if size > INLINE_STREAM_MAX:
            return None
        return os.pread(fd, size, 0) if size else b""
    except OSError:
        return None


def _split(data: bytes, sizes: tuple[int, ...]) -> list[bytes | None]:
    parts: list[bytes | None] = []
    offset = 0
    for size in sizes:
        if size < 0:
            parts.append(None)
        else:
            parts.append(data[offset : offset + size])
            offset += size
    return parts


class Spare:
    """A child forked ahead of need, waiting for its task's frame: forking is off the path.

    It is the task's own process: a process group of its own, the subreaper of what the task
    starts, and (where the machine gives cgroups) the only process of a new cgroup, which it
    joins before its task is sent. Its PID, start time and cgroup are the task's handle, so
    that nothing done with the handle can reach the worker or the next task."""

    def __init__(self, keep_closed: list[int], cgroup: str | None) -> None:
        frame_r, self.frame_w = os.pipe()
        self.report, report_w = os.pipe()
        self.cgroup = cgroup
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self.frame_w)
            os.close(self.report)
            for fd in keep_closed:  # the dispatcher's pipes are never the task's
                os.close(fd)
            with contextlib.suppress(OSError):
                os.setpgid(0, 0)
            containment.become_subreaper()
            if cgroup is not None:
                containment.join_cgroup(cgroup)
            stream = os.fdopen(frame_r, "rb")
            frame = read_frame(stream)
            if frame is None:
                os._exit(0)  # the worker is gone
            _child(*frame, report_w, lambda: stream.read(1) == b"g")
        with contextlib.suppress(OSError):
            os.setpgid(self.pid, self.pid)  # as the child does: whichever runs first
        os.close(frame_r)
        os.close(report_w)
        self.start_time = psutil.Process(self.pid).create_time()

    def ready(self) -> tuple[str, int, float, str | None]:
        """The frame that tells the dispatcher which process will run its next task."""
        return ("ready", self.pid, self.start_time, self.cgroup)

    def prepare(self, frame: tuple[bytes, str, str]) -> None:
        """Send the task: the child makes its directory and files, then waits for :meth:`go`."""
        data = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(HEADER.pack(len(data)) + data)
        while view:
            view = view[os.write(self.frame_w, view) :]

    def go(self) -> None:
        """Let the prepared task run."""
        os.write(self.frame_w, b"g")
        os.close(self.frame_w)

    def abort(self) -> None:
        """The task will not run: the child exits without starting it."""
        os.close(self.frame_w)
        os.close(self.report)
        os.waitpid(self.pid, 0)
        if self.cgroup:
            containment.kill_cgroup(self.cgroup)

    def answer(self) -> tuple[Any, ...]:
        """Wait until the task reports (or dies); the answer for the dispatcher:
        ``("done", outcome, stdout, stderr)``, each bytes or None (in its file), or
        ``("died", exit status)``.

        The report pipe is never read to its end: a process the task left behind may hold
        it open; so the child's exit is watched as well."""
        received = bytearray()
        while True:
            ready, _, _ = select.select([self.report], [], [], 0.05)
            if ready:
                chunk = os.read(self.report, 1 << 20)
                received += chunk
                if len(received) >= REPORT.size:
                    sizes = REPORT.unpack(received[: REPORT.size])
                    if len(received) >= REPORT.size + sum(max(0, n) for n in sizes):
                        return ("done", *_split(bytes(received[REPORT.size :]), sizes))
                if chunk:
                    continue
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.pid = 0
                return ("died", os.waitstatus_to_exitcode(status))

    def finish(self, mark: str, began: float) -> None:
        """After the answer: wait for the child's exit, kill what the task left running (its
        cgroup, which is then removed; and, re-parented here, what left it)."""
        os.close(self.report)
        if self.pid:
            os.waitpid(self.pid, 0)
        if self.cgroup:
            containment.kill_cgroup(self.cgroup)
        if containment.has_children(os.getpid()):
            containment.kill_task_processes(os.getpid(), mark, began)
        reap()


def reap(wait: float = 1.0) -> None:
    """Collect the exit of every child of the worker: what the task left, re-parented here
    and killed (the worker has no other child between two tasks), so that none stays a
    zombie; waits up to ``wait`` s for those still dying."""
    deadline = time.monotonic() + wait
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # none left
        if pid == 0:
            if time.monotonic() > deadline:
                return
            time.sleep(0.002)


def _warm_up() -> None:
    """Run a task's steps once here, on a task of our own: what they set up on first use
    (caches, lazy imports) is then inherited by every fork instead of redone in each."""
    import shutil
    import tempfile

    import cloudpickle

    from covalent_core.executors.runner import task_payload

    directory = tempfile.mkdtemp(prefix="covalent-core-warm-")
    try:
        write_outcome(directory, execute(task_payload(cloudpickle.dumps(int), [], {}, None)))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    gc.freeze()  # objects of the parent stay out of the children's collections (fewer copies)


def main() -> int:
    """Serve tasks until stdin closes."""
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    cgroup_base = os.environ.pop(containment.CGROUP_BASE_VARIABLE, None)
    containment.become_subreaper()
    _warm_up()
    ours = [proto_in.fileno(), proto_out.fileno()]
    while True:
        spare = Spare(ours, containment.task_cgroup(cgroup_base))
        try:
            write_frame(proto_out, spare.ready())
        except BrokenPipeError:
            spare.abort()
            return 0
        frame = read_frame(proto_in)
        if frame is None:
            spare.abort()
            return 0
        _payload, _directory, mark = frame
        spare.prepare(frame)
        if read_frame(proto_in) != GO:
            spare.abort()
            return 0  # the dispatcher is gone (or confused): the task never started
        began = time.time()
        spare.go()
        answer = spare.answer()
        try:
            write_frame(proto_out, answer)  # the dispatcher goes on while this cleans up
        except BrokenPipeError:
            spare.finish(mark, began)
            return 0  # the dispatcher died: the outcome file waits for the next one
        spare.finish(mark, began)


if __name__ == "__main__":
    sys.exit(main())
