"""Keeping every process a task starts within reach, so that all of them die with the task.

A task may start processes that leave its process group and session (``setsid``) and whose
parent exits at once (a double-forked daemon). Two things keep them within reach:

- **A subreaper.** The process that forks each task declares itself a child subreaper
  (``PR_SET_CHILD_SUBREAPER``): an orphaned descendant is re-parented to it rather than to
  PID 1, so walking its descendants finds every process of the task while it lives.
- **A marker.** Every process of the task inherits ``COVALENT_CORE_TASK_MARK=<token>`` in its
  environment; scanning ``/proc`` for it finds them even after the subreaper is gone. Only
  processes that started after the task did are ever signalled, so a reused PID is never hit.

What this cannot catch: a process that is re-parented away from the subreaper *and* clears
its environment with an ``exec`` (only possible once the worker that forked the task is gone,
e.g. killed from outside), and processes of another user (a ``sudo``). A cgroup per task
would catch those; it needs a writable cgroup hierarchy, which most machines do not delegate
to their users. The SSH executor's remote agent does the same on its host.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from .runner import MARK_VARIABLE, all_pids, become_subreaper, descendants, process_stat

__all__ = ["MARK_VARIABLE", "become_subreaper", "descendants", "kill_task_processes", "marked"]

MECHANISM = "subreaper + marker"


def _ticks_per_second() -> int:
    return os.sysconf("SC_CLK_TCK")


def _boot_time() -> float:
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def has_children(pid: int) -> bool:
    """True if ``pid`` has any child process (cheap: no scan of ``/proc``)."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    try:
        for tid in threads:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                if fh.read().strip():
                    return True
    except FileNotFoundError:
        return bool(descendants(pid))  # a kernel without the children file
    return False


def marked(mark: str, since: float) -> set[int]:
    """Live processes of this user carrying ``mark`` that started at ``since`` or later."""
    needle = f"{MARK_VARIABLE}={mark}".encode()
    since_ticks = (since - _boot_time() - 1.0) * _ticks_per_second()  # btime is whole seconds
    me = os.getpid()
    found = set()
    for pid in all_pids():
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue  # gone, or another user's
        if needle + b"\0" not in environ + b"\0":
            continue
        info = process_stat(pid)
        if info is not None and info[0] not in ("Z", "X") and info[2] >= since_ticks:
            found.add(pid)
    return found


def kill_all(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def kill_task_processes(
    root: int, mark: str | None, since: float, timeout: float = 5.0
) -> set[int]:
    """SIGKILL every descendant of ``root`` and every process carrying ``mark`` (started
    since ``since``), until none is left or ``timeout`` passed; returns those still alive."""
    deadline = time.monotonic() + timeout
    while True:
        targets = descendants(root) | (marked(mark, since) if mark else set())
        if not targets or time.monotonic() > deadline:
            return targets
        kill_all(targets)
        time.sleep(0.005)
