"""A warm worker of the local executor: a parent with the imports done that forks each pack.

Started in its own session. For each pack of tasks (see :mod:`.pack`; one task unless the
executor packs) the worker forks a process ahead of need and tells the dispatcher
``("ready", pid, start time, cgroup)``: that process is the pack's own (its own process
group, the subreaper of what its tasks start, alone in a new cgroup where the machine gives
one; see :mod:`.containment`), and those three, with each task's mark and directory, are the
tasks' job handles, so that nothing done with a handle can reach the worker or another pack.
The dispatcher sends ``("tasks", [(payload, directory, mark), ...])``, then ``("go", skip)``
once it has stored the handles (``skip``: the indices whose handle could not be stored,
which never run). The pack's process prepares the directories while the handles are stored.

The worker forwards each task's report as it comes: ``("done", index, outcome, stdout,
stderr)`` (each bytes, or None: read it from its file), ``("withdrawn", index)`` (a cancel
came first), or ``("died", index, exit status)`` if the process died while running it. Once
the process has ended it kills whatever the pack left running (its cgroup, which it removes,
and what was re-parented to the worker) and says ``("ended", unrun)``: the indices that
never started (the process was killed, or could not be reset for them), which the
dispatcher sends again. The next pack's process is forked after that.

Outcomes live in files so that tasks outlive the dispatcher: when the service dies the worker
lets its pack run to its end, cleans up after it and exits on the closed pipe, and the next
service reads the files (see :func:`covalent_core.executors.pool.reattach_worker`).
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import sys
import time
from typing import IO, Any

import psutil

from covalent_core.executors import containment
from covalent_core.executors.pack import serve
from covalent_core.executors.protocol import (
    DONE,
    GO,
    REPORT,
    STARTED,
    WITHDRAWN,
    frame,
    read_frame,
    write_all,
    write_frame,
    write_outcome,
)
from covalent_core.executors.runner import execute


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
    """A process forked ahead of need, waiting for its pack: forking is off the path."""

    def __init__(self, keep_closed: list[int], cgroup: str | None) -> None:
        frame_r, self.frame_w = os.pipe()
        self.report, report_w = os.pipe()
        self.cgroup = cgroup
        self.tasks: list[tuple[bytes, str, str]] = []
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self.frame_w)
            os.close(self.report)
            for fd in keep_closed:  # the dispatcher's pipes are never the tasks'
                os.close(fd)
            with contextlib.suppress(OSError):
                os.setpgid(0, 0)
            containment.become_subreaper()
            if cgroup is not None:
                containment.join_cgroup(cgroup)
            stream = os.fdopen(frame_r, "rb")
            message = read_frame(stream)
            if message is None:
                os._exit(0)  # the worker is gone

            def go() -> Any:
                answer = read_frame(stream)
                stream.close()
                return set(answer[1]) if answer is not None else None

            serve(message[1], report_w, cgroup, go)
        with contextlib.suppress(OSError):
            os.setpgid(self.pid, self.pid)  # as the child does: whichever runs first
        os.close(frame_r)
        os.close(report_w)
        self.start_time = psutil.Process(self.pid).create_time()
        self._received = bytearray()

    def ready(self) -> tuple[str, int, float, str | None]:
        """The frame that tells the dispatcher which process will run its next pack."""
        return ("ready", self.pid, self.start_time, self.cgroup)

    def prepare(self, message: tuple[str, list[tuple[bytes, str, str]]]) -> None:
        """Send the pack: the process makes the tasks' directories, then waits for :meth:`go`."""
        self.tasks = message[1]
        write_all(self.frame_w, frame(message))

    def go(self, skip: set[int]) -> None:
        """Let the pack run, all but ``skip`` (a process that was killed meanwhile is not
        told: :meth:`answers` finds it ended)."""
        with contextlib.suppress(BrokenPipeError):
            write_all(self.frame_w, frame((GO, sorted(skip))))
        os.close(self.frame_w)

    def abort(self) -> None:
        """The pack will not run: its process exits without starting a task."""
        os.close(self.frame_w)
        self._close()

    def _close(self) -> None:
        os.close(self.report)
        if self.pid:
            os.waitpid(self.pid, 0)
            self.pid = 0
        if self.cgroup:
            containment.kill_cgroup(self.cgroup)

    def answers(self, skip: set[int]) -> Any:
        """Each task's answer for the dispatcher, as the process reports it, then
        ``("ended", unrun)`` once it has exited and what it left is killed.

        The report pipe is never read to its end: a process a task left behind may hold it
        open; so the process's exit is watched as well."""
        reported: set[int] = set()
        while True:
            answer = self._next_report()
            if answer is None:
                break
            reported.add(answer[1])
            yield answer
        status = self._exit_status
        left = [i for i in range(len(self.tasks)) if i not in skip and i not in reported]
        if left and status != 0:
            running = self.tasks[left[0]][1]
            began = os.path.exists(os.path.join(running, STARTED))
            withdrawn = os.path.exists(os.path.join(running, WITHDRAWN))
            if began and not withdrawn:
                yield ("died", left.pop(0), status)
        self._close()
        yield ("ended", left)

    _exit_status: int = 0

    def _next_report(self) -> tuple[Any, ...] | None:
        """The next task's report, or None once the process has exited without another."""
        received = self._received
        while True:
            if len(received) >= REPORT.size:
                kind, index, *sizes = REPORT.unpack(received[: REPORT.size])
                need = REPORT.size + sum(max(0, n) for n in sizes)
                if len(received) >= need:
                    body = bytes(received[REPORT.size : need])
                    del received[:need]
                    if kind == DONE:
                        return ("done", index, *_split(body, tuple(sizes)))
                    return ("withdrawn", index)
            ready, _, _ = select.select([self.report], [], [], 0.05)
            if ready:
                chunk = os.read(self.report, 1 << 20)
                received += chunk
                if chunk:
                    continue
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.pid = 0
                self._exit_status = os.waitstatus_to_exitcode(status)
                # What it wrote just before it ended is still in the pipe: read it first.
                while select.select([self.report], [], [], 0)[0]:
                    chunk = os.read(self.report, 1 << 20)
                    if not chunk:
                        break
                    received += chunk
                if len(received) >= REPORT.size:
                    continue
                return None

    def finish(self, marks: list[str], began: float) -> None:
        """After the pack: kill what its tasks left re-parented here (outside its cgroup)."""
        if containment.has_children(os.getpid()):
            for mark in marks:
                containment.kill_task_processes(os.getpid(), mark, began)
        reap()


def reap(wait: float = 1.0) -> None:
    """Collect the exit of every child of the worker: what a pack left, re-parented here
    and killed (the worker has no other child between two packs), so that none stays a
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

    from covalent_core.executors import pack  # noqa: F401 - imported before any fork
    from covalent_core.executors.runner import task_payload

    directory = tempfile.mkdtemp(prefix="covalent-core-warm-")
    try:
        write_outcome(directory, execute(task_payload(cloudpickle.dumps(int), [], {}, None)))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    gc.freeze()  # objects of the parent stay out of the children's collections (fewer copies)


def _forward(proto_out: IO[bytes] | None, answer: Any) -> IO[bytes] | None:
    """Tell the dispatcher; None once it is gone (the pack runs on regardless)."""
    if proto_out is None:
        return None
    try:
        write_frame(proto_out, answer)
    except BrokenPipeError:
        return None
    return proto_out


def main() -> int:
    """Serve packs until stdin closes."""
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out: IO[bytes] | None = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    cgroup_base = os.environ.pop(containment.CGROUP_BASE_VARIABLE, None)
    containment.become_subreaper()
    _warm_up()
    assert proto_out is not None
    ours = [proto_in.fileno(), proto_out.fileno()]
    while True:
        spare = Spare(ours, containment.task_cgroup(cgroup_base))
        proto_out = _forward(proto_out, spare.ready())
        message = read_frame(proto_in) if proto_out is not None else None
        if message is None:
            spare.abort()
            return 0
        spare.prepare(message)
        go = read_frame(proto_in)
        if not (isinstance(go, tuple) and go[0] == GO):
            spare.abort()
            return 0  # the dispatcher is gone (or confused): no task started
        skip = set(go[1])
        began = time.time()
        spare.go(skip)
        for answer in spare.answers(skip):
            proto_out = _forward(proto_out, answer)  # the dispatcher goes on meanwhile
        spare.finish([mark for _, _, mark in spare.tasks], began)
        if proto_out is None:
            return 0  # the dispatcher died: the outcome files wait for the next one


if __name__ == "__main__":
    sys.exit(main())
