"""Keeping every process a task starts within reach, so that all of them die with the task.

A task may start processes that leave its process group and session (``setsid``) and whose
parent exits at once (a double-forked daemon). Up to three things keep them within reach:

- **A cgroup per task**, where this machine lets us create one (a writable cgroup v2
  hierarchy: ours in a container, or one delegated by systemd): the process that runs a task
  joins ``<our cgroup>/covalent-core/task-<id>`` before the task is sent to it, so every
  process of the task is born there, and nothing inside can leave it without privileges. The
  cgroup belongs to that one task: a cancel that comes late finds it empty or gone, never the
  next task. A cancel freezes it (``cgroup.freeze``) while it collects the task's processes,
  and ends what is left with ``cgroup.kill``.
- **A subreaper.** The task's process and the worker that forked it are child subreapers
  (``PR_SET_CHILD_SUBREAPER``): an orphaned descendant is re-parented to the nearest of them
  rather than to PID 1, so walking the task's descendants finds every process of the task
  while it lives, even one that left the cgroup (which takes privileges).
- **A marker.** Every process of the task inherits ``COVALENT_CORE_TASK_MARK=<token>`` in its
  environment; scanning ``/proc`` for it finds them even after the subreaper is gone. Only
  processes that started after the task did are ever signalled, so a reused PID is never hit.

What the subreaper and marker cannot catch (without a cgroup): a process that is re-parented
away from the subreapers *and* clears its environment with ``exec`` (possible only once the
worker that forked the task is gone, e.g. killed from outside), and processes of another user
(a ``sudo``). :func:`mechanism` says what is in force (``covalent-core executors`` prints it).
The SSH executor's remote agent and the remote runner use the subreaper on their hosts.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
import uuid

from .runner import MARK_VARIABLE, all_pids, become_subreaper, descendants, process_stat

__all__ = ["MARK_VARIABLE", "become_subreaper", "descendants", "kill_task_processes", "marked"]


@functools.cache
def _clock() -> tuple[float, int]:
    import psutil

    return psutil.boot_time(), os.sysconf("SC_CLK_TCK")


def start_time(pid: int) -> float | None:
    """When ``pid`` started, in seconds since the epoch (as psutil's ``create_time``); None
    if there is no such process. One read of ``/proc/PID/stat``: cheap enough for a cancel."""
    info = process_stat(pid)
    if info is None:
        return None
    boot, ticks = _clock()
    return boot + info[2] / ticks


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
    root: int | None, mark: str | None, since: float, timeout: float = 5.0
) -> set[int]:
    """SIGKILL every descendant of ``root`` and every process carrying ``mark`` (started
    since ``since``), until none is left or ``timeout`` passed; returns those still alive."""
    deadline = time.monotonic() + timeout
    while True:
        targets = descendants(root) if root is not None else set()
        targets |= marked(mark, since) if mark else set()
        if not targets or time.monotonic() > deadline:
            return targets
        kill_all(targets)
        time.sleep(0.005)


# -- a cgroup per task ---------------------------------------------------------------------

CGROUP_DIR = "covalent-core"


@functools.lru_cache(maxsize=1)
def cgroup_base() -> str | None:
    """Where task cgroups go (``<our cgroup v2>/covalent-core``), or None if we cannot make
    them here. Checked once per process, by making one. A process that runs inside a task's
    cgroup (a task that dispatches, say) uses the base that task's cgroup is in: nothing is
    made inside a task's cgroup."""
    own = _own_cgroup()
    if own is None:
        return None
    inside = own.find(f"/{CGROUP_DIR}/{TASK_PREFIX}")
    if inside >= 0:
        own = own[:inside]
    for mount in _cgroup2_mounts():
        base = os.path.join(mount, own.lstrip("/"), CGROUP_DIR)
        probe = os.path.join(base, f"probe-{os.getpid()}")
        try:
            os.makedirs(probe, exist_ok=True)
            os.rmdir(probe)
        except OSError:
            continue
        if os.path.exists(os.path.join(base, "cgroup.procs")):
            return base
    return None


def _own_cgroup() -> str | None:
    try:
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return None


def _cgroup2_mounts() -> list[str]:
    mounts = []
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                fields = line.split()
                separator = fields.index("-")
                if fields[separator + 1] == "cgroup2" and fields[4] != "/":
                    mounts.append(fields[4])
    except (OSError, ValueError, IndexError):
        pass
    return mounts


TASK_PREFIX = "task-"
CGROUP_BASE_VARIABLE = "COVALENT_CORE_CGROUP_BASE"
"""Set for a local worker: where the cgroups of its tasks go (none: no cgroups here)."""


def task_cgroup(base: str | None) -> str | None:
    """A new cgroup path for one task (made when its process joins; None: no cgroups)."""
    return None if base is None else os.path.join(base, TASK_PREFIX + uuid.uuid4().hex)


def sweep_task_cgroups() -> None:
    """Remove the empty cgroups of tasks that have ended (one with members stays)."""
    base = cgroup_base()
    if base is None:
        return
    with contextlib.suppress(OSError):
        for entry in os.scandir(base):
            if entry.name.startswith((TASK_PREFIX, "worker-")):  # worker-: an older release's
                with contextlib.suppress(OSError):
                    os.rmdir(entry.path)


def join_cgroup(path: str, attempts: int = 3) -> bool:
    """Create ``path`` and move this process into it (a task's process, before its task)."""
    for _ in range(attempts):
        try:
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "cgroup.procs"), "w") as fh:
                fh.write(str(os.getpid()))
        except FileNotFoundError:
            continue  # a sweep removed it while it was still empty: make it again
        except OSError:
            return False
        return True
    return False


def freeze(path: str, frozen: bool, *, wait: bool = False, timeout: float = 1.0) -> bool:
    """Freeze (or thaw) every process in the cgroup: a frozen process cannot fork, exit or
    move, so what a task runs holds still while it is collected. False if not possible.

    ``wait``: return once every process is frozen (the kernel freezes them one by one), for
    a reader that must see the processes hold still (or after ``timeout`` s regardless)."""
    try:
        with open(os.path.join(path, "cgroup.freeze"), "w") as fh:
            fh.write("1" if frozen else "0")
    except OSError:
        return False
    if frozen and wait:
        deadline = time.monotonic() + timeout
        events = os.path.join(path, "cgroup.events")
        while time.monotonic() < deadline:
            try:
                with open(events) as fh:
                    if "frozen 1" in fh.read():
                        break
            except OSError:
                break
            time.sleep(0.0002)
    return True


def children(pid: int) -> set[int]:
    """The direct children of ``pid`` (zombies included), from the kernel's child lists."""
    found: set[int] = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as fh:
                found.update(int(child) for child in fh.read().split())
    except OSError:
        pass
    return found


def subtree(pid: int) -> set[int]:
    """Descendants of ``pid`` (zombies included), read from the kernel's child lists: no scan
    of every process, so cheap enough to run before a first signal. Where the kernel keeps no
    child lists, the whole process table is read instead."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        try:
            threads = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in threads:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as fh:
                    children = fh.read().split()
            except FileNotFoundError:
                if os.path.isdir(f"/proc/{parent}/task/{tid}"):
                    return descendants(pid)  # no child lists in this kernel
                continue  # the thread ended
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
    return found


def cgroup_members(path: str) -> set[int]:
    """The processes in a task's cgroup and in any cgroup a task made below it (none once
    it is gone)."""
    members: set[int] = set()
    try:
        with open(os.path.join(path, "cgroup.procs")) as fh:
            members.update(int(line) for line in fh if line.strip())
        children = [e.path for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return members
    for child in children:
        members |= cgroup_members(child)
    return members


def _populated(path: str) -> bool:
    """True while any process is in the cgroup or below it."""
    try:
        with open(os.path.join(path, "cgroup.events")) as fh:
            return any(line.strip() == "populated 1" for line in fh)
    except OSError:
        return bool(cgroup_members(path))


def _remove(path: str) -> None:
    """Remove the cgroup and any a task made below it (the deepest first)."""
    for directory, _, _ in os.walk(path, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def kill_cgroup(path: str, timeout: float = 5.0) -> bool:
    """Kill every process in the task's cgroup (and below it) and remove it; True once it is
    gone."""
    deadline = time.monotonic() + timeout
    kill_file = os.path.join(path, "cgroup.kill")
    while True:
        if not os.path.isdir(path):
            return True
        if not _populated(path):
            _remove(path)
            if not os.path.isdir(path):
                return True
        elif os.path.exists(kill_file):
            with contextlib.suppress(OSError), open(kill_file, "w") as fh:
                fh.write("1")
        else:  # kernels before 5.14: kill each member (they cannot escape the cgroup)
            kill_all(cgroup_members(path))
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)


def mechanism() -> str:
    """What keeps a local task's processes together on this machine, in words."""
    base = cgroup_base()
    if base is not None:
        return f"a cgroup per task (under {base}), a subreaper and a task marker"
    return "a subreaper and a task marker (no writable cgroup v2 hierarchy here)"
