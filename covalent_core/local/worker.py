"""A warm worker of the local executor: a parent with the imports done that forks pack
processes.

Started in its own session. The dispatcher asks for each batch of tasks with ``("next",
group)``, followed at once by ``("tasks", [(payload, directory, mark, title), ...])``; the
worker answers ``("ready", pid, start time, cgroup)`` naming the process that will run them:
the one that ran the last batch of the same ``group`` (dispatch) if it waits for more, else one
forked ahead of need (see :mod:`.pack`: its own process group, the subreaper of what its tasks
start, alone in a new cgroup where the machine gives one). Those three, with each task's mark
and directory, are the tasks' job handles, so that nothing done with a handle reaches the
worker or another pack. The process prepares the directories while the dispatcher stores the
handles, then ``("go", skip)`` lets it run all but ``skip`` (whose handles could not be
stored).

The worker forwards each task's report as it comes: ``("done", index, outcome, stdout,
stderr)`` (each bytes, or None: read it from its file), ``("withdrawn", index)`` (a cancel
came first), or ``("died", index, exit status)`` if the process died while running it. Then
``("idle",)``: the process, reset, waits for another batch of its group (for
:data:`IDLE_PACK` seconds at most); or ``("ended", unrun)``: the process has exited (killed,
or it could not be reset), what it left is killed, and ``unrun`` are the indices that never
started, which the dispatcher sends again.

Outcomes live in files so that tasks outlive the dispatcher: when the service dies the worker
lets the batch run to its end, cleans up after it and exits, and the next service reads the
files (see :func:`covalent_core.local.pool.reattach_worker`).
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

from covalent_core.local.pack import serve
from covalent_core.sdk import containment
from covalent_core.sdk.containment import start_time
from covalent_core.sdk.protocol import (
    DONE,
    GO,
    READY,
    REPORT,
    PackTask,
    TaskState,
    frame,
    read_frame,
    task_state,
    write_all,
    write_frame,
    write_outcome,
)
from covalent_core.sdk.runner import execute


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
    """A process forked ahead of need: it runs the batches of one group (dispatch) that the
    dispatcher gives it, and waits between them."""

    def __init__(self, cgroup: str | None) -> None:
        frame_r, self.frame_w = os.pipe()
        self.report, report_w = os.pipe()
        self.cgroup = cgroup
        self.group: object = None
        self.tasks: list[PackTask] = []
        self.pid = os.fork()
        if self.pid == 0:
            # Only its own pipes: not the dispatcher's, nor those of the worker's other
            # processes (one holding another's frame pipe would keep it from ever ending).
            for fd in os.listdir("/proc/self/fd"):
                if int(fd) > 2 and int(fd) not in (frame_r, report_w):
                    with contextlib.suppress(OSError):
                        os.close(int(fd))
            with contextlib.suppress(OSError):
                os.setpgid(0, 0)
            containment.become_subreaper()
            if cgroup is not None:
                containment.join_cgroup(cgroup)
            serve(os.fdopen(frame_r, "rb"), report_w, cgroup)
        with contextlib.suppress(OSError):
            os.setpgid(self.pid, self.pid)  # as the child does: whichever runs first
        os.close(frame_r)
        os.close(report_w)
        self.start_time = start_time(self.pid) or psutil.Process(self.pid).create_time()
        self._received = bytearray()
        self._exit_status: int | None = None

    def ready(self) -> tuple[str, int, float, str | None]:
        """The frame that tells the dispatcher which process runs its next batch."""
        return ("ready", self.pid, self.start_time, self.cgroup)

    def alive(self) -> bool:
        return self.pid != 0

    def send(self, message: Any) -> bool:
        """Send the process a frame; False if it has ended (the worker says so after)."""
        if message[0] == "tasks":
            self.tasks = message[1]
        try:
            write_all(self.frame_w, frame(message))
        except BrokenPipeError:
            return False
        return True

    def batch_answers(self, skip: set[int], others: tuple[Spare | None, ...] = ()) -> Any:
        """Each task's answer for the dispatcher, as the process reports it; then ``("idle",)``
        once the batch is over and the process waits for the next, or ``("ended", unrun)``
        if the process has exited (killed, or it could not be reset), what it left killed.

        The report pipe is never read to its end: a process a task left behind may hold it
        open; so the process's exit is watched as well."""
        reported: set[int] = set()
        while True:
            answer = self._next_report()
            if answer is None:
                break
            if answer[0] == "idle":
                yield answer
                return
            reported.add(answer[1])
            yield answer
        # The process has ended: each task it did not report says in its directory how far
        # it came (it may have ended without a way to say so: its pipe closed by a task).
        status = self._exit_status or 0
        unrun = []
        for index in range(len(self.tasks)):
            if index in skip or index in reported:
                continue
            state = task_state(self.tasks[index][1])
            if state is TaskState.ENDED:
                yield ("done", index, None, None, None)  # read from its files
            elif state is TaskState.RUNNING:
                yield ("died", index, status)
            else:
                unrun.append(index)  # never started: it is sent again
        self.close(others)
        yield ("ended", unrun)

    def _next_report(self) -> tuple[Any, ...] | None:
        """The next report, or None once the process has exited without another."""
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
                    if kind == READY:
                        return ("idle",)
                    return ("withdrawn", index)
            if self.pid == 0:
                return None
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

    def close(self, others: tuple[Spare | None, ...] = ()) -> None:
        """End the process (it exits on the closed pipe, between batches) and kill what it
        left: its cgroup, which is removed, and what was re-parented to the worker (the
        worker's ``others`` processes and their children are not its)."""
        with contextlib.suppress(OSError):
            os.close(self.frame_w)
        if self.cgroup:  # a service killed while it struck a task may have left it frozen
            containment.freeze(self.cgroup, False)
        if self.pid:
            os.waitpid(self.pid, 0)
            self.pid = 0
        with contextlib.suppress(OSError):
            os.close(self.report)
        if self.cgroup:
            containment.kill_cgroup(self.cgroup)
        theirs = {other.pid for other in others if other is not None and other.pid}
        if containment.children(os.getpid()) - theirs:
            kill_leftovers(theirs, [task[2] for task in self.tasks], self.start_time)


def kill_leftovers(keep: set[int], marks: list[str], since: float, wait: float = 5.0) -> None:
    """Kill what a pack's tasks left re-parented to the worker (all its descendants but the
    processes of ``keep`` and theirs, and what carries the tasks' marks), and collect the
    exit of those that were its children, so that none stays a zombie."""
    me = os.getpid()
    protected = set(keep)
    for pid in keep:
        protected |= containment.subtree(pid)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        targets = containment.subtree(me) - protected
        for mark in marks:
            targets |= containment.marked(mark, since) - protected
        targets = {p for p in targets if not _zombie(p)}
        if not targets:
            break
        containment.kill_all(targets)
        time.sleep(0.002)
    for pid in containment.children(me) - protected:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _zombie(pid: int) -> bool:
    info = containment.process_stat(pid)
    return info is None or info[0] in ("Z", "X")


def _warm_up() -> None:
    """Run a task's steps once here, on a task of our own: what they set up on first use
    (caches, lazy imports) is then inherited by every fork instead of redone in each."""
    import shutil
    import tempfile

    import cloudpickle

    from covalent_core.local import pack  # noqa: F401 - imported before any fork
    from covalent_core.sdk.runner import task_payload

    directory = tempfile.mkdtemp(prefix="covalent-core-warm-")
    try:
        write_outcome(directory, execute(task_payload(cloudpickle.dumps(int), [], {}, None)))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    gc.freeze()  # objects of the parent stay out of the children's collections (fewer copies)


def _forward(proto_out: IO[bytes] | None, answer: Any) -> IO[bytes] | None:
    """Tell the dispatcher; None once it is gone (the tasks run on regardless)."""
    if proto_out is None:
        return None
    try:
        write_frame(proto_out, answer)
    except BrokenPipeError:
        return None
    return proto_out


IDLE_PACK = 2.0
"""Seconds a pack's process waits for another batch of its dispatch before it is ended."""


def main() -> int:
    """Serve batches until stdin closes: ``("next", group)`` (then ``("tasks", [...])`` and
    ``("go", skip)``) runs one in the process that ran the last batch of ``group`` if it
    waits for more, else in a new one (``group`` None: a process of its own, ended after)."""
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
    spare: Spare | None = Spare(containment.task_cgroup(cgroup_base))
    waiting: Spare | None = None  # the last batch's process, waiting for more of its group
    try:
        while proto_out is not None:
            if waiting is not None and not select.select([proto_in], [], [], IDLE_PACK)[0]:
                waiting.close((spare,))  # nothing more came for its dispatch
                waiting = None
                continue
            request = read_frame(proto_in)
            if request is None or request[0] != "next":
                return 0  # the dispatcher is gone (or confused)
            group = request[1]
            if waiting is not None and group is not None and waiting.group == group:
                process = waiting
            else:
                if waiting is not None:
                    waiting.close((spare,))
                process = spare or Spare(containment.task_cgroup(cgroup_base))
                spare = None
            waiting = None
            process.group = group
            proto_out = _forward(proto_out, process.ready())
            message = read_frame(proto_in)
            if message is None or message[0] != "tasks":
                process.close((spare,))
                return 0
            process.send(message)
            if spare is None:  # the next one is forked while the handles are stored
                spare = Spare(containment.task_cgroup(cgroup_base))
            go = read_frame(proto_in)
            if not (isinstance(go, tuple) and go[0] == GO):
                process.close((spare,))
                return 0  # the dispatcher is gone: none of the batch started
            skip = set(go[1])
            process.send(go)
            last: Any = None
            for answer in process.batch_answers(skip, (spare,)):
                last = answer
                proto_out = _forward(proto_out, answer)  # the dispatcher goes on meanwhile
            if last == ("idle",) and group is not None and proto_out is not None:
                waiting = process
            elif last == ("idle",):
                process.close((spare,))
        return 0  # the dispatcher died: the outcome files wait for the next one
    finally:
        for process in (waiting, spare):
            if process is not None:
                process.close((waiting, spare))


if __name__ == "__main__":
    sys.exit(main())
