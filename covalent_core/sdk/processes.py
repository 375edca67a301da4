"""Identifying and killing local process groups without ever hitting a reused PID."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from dataclasses import dataclass, fields

import psutil

from . import containment
from .protocol import WITHDRAWN, TaskState, mark_file, task_state

# Two readings of one process's start time differ by far less than this; a reused PID
# started at least a clock tick later.
START_TIME_TOLERANCE = 0.01


@dataclass(frozen=True)
class ProcessHandle:
    """A process on a host, identified by PID and start time (PIDs get reused)."""

    host: str
    pid: int
    pgid: int
    start_time: float
    mark: str | None = None
    """The task marker its processes carry (:mod:`.containment`), when it has one."""
    cgroup: str | None = None
    """The task's own cgroup, where this machine gives one."""
    parent: int | None = None
    """The warm worker that forked the task's process and cleans up after it, if one did."""
    dir: str | None = None
    """The task's directory (start mark, outcome), when it has one."""
    pack: bool = False
    """The process runs a pack of tasks one after another: ``dir`` tells whether it runs
    this one now (see :mod:`.protocol`), and only then may it be signalled."""

    def to_dict(self) -> dict[str, object]:
        """The handle as a JSON-ready dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, text: str) -> ProcessHandle:
        """The handle stored as JSON (extra keys, such as a pack id, are ignored)."""
        data = json.loads(text)
        return cls(
            **{k: data[k] for k in ("host", "pid", "pgid", "start_time")},
            mark=data.get("mark"),
            cgroup=data.get("cgroup"),
            parent=data.get("parent"),
            dir=data.get("dir"),
            pack=bool(data.get("pack", False)),
        )

    def alive(self) -> bool:
        """True while this very process runs (not a zombie, not a reused PID)."""
        return not is_dead(self.pid) and same_process(self)

    @classmethod
    def of(cls, pid: int) -> ProcessHandle:
        """The handle of a live local process."""
        return cls(
            host=socket.gethostname(),
            pid=pid,
            pgid=os.getpgid(pid),
            start_time=start_time(pid) or psutil.Process(pid).create_time(),
        )


def stat_fields(pid: int | str) -> list[bytes] | None:
    """``/proc/PID/stat`` after the command name: state, ppid, pgrp, ... (None: no process)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name is parenthesised and may contain spaces and parentheses.
    return stat[stat.rindex(b")") + 2 :].split()


def is_dead(pid: int) -> bool:
    """True if ``pid`` does not exist or is a zombie (dead, not yet reaped)."""
    fields = stat_fields(pid)
    return fields is None or fields[0] in (b"Z", b"X")


start_time = containment.start_time


def same_process(handle: ProcessHandle) -> bool:
    """True if the handle's PID still belongs to the process it was taken from."""
    started = start_time(handle.pid)
    return started is not None and abs(started - handle.start_time) < START_TIME_TOLERANCE


def group_members(pgid: int) -> list[int]:
    """PIDs of live (not zombie) processes in process group ``pgid``."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        tail = stat_fields(entry.name)
        if tail is not None and int(tail[2]) == pgid and tail[0] not in (b"Z", b"X"):
            members.append(int(entry.name))
    return members


def _signal_all(pgid: int | None, pids: dict[int, int], sig: int) -> None:
    """Send ``sig`` to group ``pgid`` and to each of ``pids`` ({pid: start ticks}) that is
    still the process it was when it was collected."""
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for pid, started in pids.items():
        info = containment.process_stat(pid)
        if info is None or info[2] != started:
            continue  # gone, or its PID reused
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _collect(handle: ProcessHandle, own: bool) -> dict[int, int]:
    """Every process of the task that can be found without scanning the whole process table:
    the members of its cgroup, its process (``own``: still the handle's) and their
    descendants, as {pid: start ticks}."""
    roots = containment.cgroup_members(handle.cgroup) if handle.cgroup else set()
    if own:
        roots.add(handle.pid)
    found = set(roots)
    for pid in roots:
        found |= containment.subtree(pid)
    collected = {}
    for pid in found:
        info = containment.process_stat(pid)
        if info is not None and info[0] not in ("Z", "X"):
            collected[pid] = info[2]
    return collected


def strike(handle: ProcessHandle, sig: int = signal.SIGTERM) -> dict[int, int] | None:
    """Send ``sig`` to every process of the task, found while they hold still; what was
    signalled ({pid: start ticks}), or None if the handle's process is not on this host or
    no longer the handle's and it has no cgroup left to look in (nothing is signalled).

    The task's cgroup is frozen first: nothing in it can fork, exit or move while its
    processes and their descendants are collected, so the chain of subreapers is intact and a
    process that left the cgroup (which takes privileges) is still found below the task. They
    are signalled, then thawed, so that they can act on ``sig``."""
    if handle.host != socket.gethostname():
        return None
    own = same_process(handle)
    if not own and not (handle.cgroup and os.path.isdir(handle.cgroup)):
        return None
    frozen = bool(handle.cgroup) and containment.freeze(handle.cgroup, True, wait=handle.pack)
    try:
        if handle.pack and not _runs_now(handle):
            return {}  # it ended, or will never start: its process runs other tasks
        collected = _collect(handle, own)
        _signal_all(handle.pgid if own else None, collected, sig)
    finally:
        if frozen:
            containment.freeze(handle.cgroup, False)  # type: ignore[arg-type]
    return collected


def _runs_now(handle: ProcessHandle) -> bool:
    """For a task of a pack, read while the pack's process is frozen: True if the process
    runs this task now (or is about to: it has marked it started). A task it has not come to
    is withdrawn here, so that it never starts; one that ended is left alone."""
    assert handle.dir is not None
    state = task_state(handle.dir)
    if state is TaskState.WAITING:
        with contextlib.suppress(OSError):
            mark_file(handle.dir, WITHDRAWN)
        return False
    return state is TaskState.RUNNING


def terminate_first(handle: ProcessHandle) -> dict[int, int] | None:
    """Send :func:`kill_group`'s first SIGTERM now (:func:`strike`), when it is cheap: the
    handle's process is on this host and in a cgroup of its own. A caller on an event loop
    sends it there, then runs :func:`kill_group` in a thread (which another busy thread may
    keep waiting for milliseconds), handing it what was signalled."""
    if not handle.cgroup or handle.host != socket.gethostname():
        return None
    return strike(handle)


def kill_group(
    handle: ProcessHandle,
    grace: float = 3.0,
    poll: float = 0.005,
    *,
    signalled: dict[int, int] | None = None,
) -> bool:
    """Stop the task of ``handle``, its process group and every descendant: SIGTERM,
    ``grace`` s, SIGKILL.

    Returns True once all of them are dead (zombies count as dead), or if the handle's
    process is already gone or its PID now belongs to another process, which is left alone.
    The task's cgroup, if it has one, is emptied and removed either way, unless it is a pack's
    whose process lives on (it runs other tasks; see :attr:`ProcessHandle.pack`: such a
    process is only ever signalled while it runs this task). ``signalled``: what
    :func:`terminate_first` sent the SIGTERM to already.
    """
    try:
        return _kill_group(handle, grace, poll, signalled)
    finally:
        if handle.cgroup and not (handle.pack and same_process(handle)):
            containment.kill_cgroup(handle.cgroup)


def _kill_group(
    handle: ProcessHandle, grace: float, poll: float, signalled: dict[int, int] | None
) -> bool:
    if handle.host != socket.gethostname():
        raise ValueError(
            f"job handle is for host {handle.host!r}, but this is {socket.gethostname()!r}; "
            "a local process can only be cancelled on the host that runs it"
        )
    targets = signalled if signalled is not None else strike(handle)
    if targets is None:
        kill_leftovers(handle)  # the task's process is gone; what it started may not be
        return True
    if not handle.cgroup and handle.mark:
        # No cgroup holds them: the processes of the task that left it are found by its
        # marker, a scan of every process's environment (too slow to repeat while waiting).
        extra = containment.marked(handle.mark, handle.start_time) - set(targets)
        more = {p: i[2] for p in extra if (i := containment.process_stat(p)) is not None}
        _signal_all(None, more, signal.SIGTERM)
        targets.update(more)

    def over() -> bool:
        """A pack's task has ended (its process goes on with others, or died): what is left
        of it its process kills, and the process is no longer this task's to signal."""
        return handle.pack and task_state(handle.dir) is not TaskState.RUNNING  # type: ignore[arg-type]

    def alive() -> dict[int, int]:
        """What is left of the task, with what its processes started since."""
        if over():
            return {}
        targets.update(_collect(handle, same_process(handle)))
        if handle.pgid == handle.pid:  # the task's own group: members that left its tree
            for pid in set(group_members(handle.pgid)) - targets.keys():
                if (info := containment.process_stat(pid)) is not None:
                    targets[pid] = info[2]
        left = {}
        for pid, started in list(targets.items()):
            info = containment.process_stat(pid)
            if info is not None and info[2] == started and info[0] not in ("Z", "X"):
                left[pid] = started
                for child in containment.subtree(pid) - targets.keys():
                    child_info = containment.process_stat(child)
                    if child_info is not None and child_info[0] not in ("Z", "X"):
                        left[child] = targets[child] = child_info[2]
        return left

    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive():
            if handle.mark:
                # Once, after the fact: a privileged task could have moved a process out of
                # reach and cleared its environment's parent chain.
                containment.kill_task_processes(None, handle.mark, handle.start_time)
            return True
        time.sleep(poll)
    if handle.pack:
        # Only while the process still runs this task, read with it frozen.
        targets.update(strike(handle, signal.SIGKILL) or {})
    else:
        if handle.cgroup:
            containment.kill_cgroup(handle.cgroup)
        remaining = strike(handle, signal.SIGKILL) or {}
        _signal_all(None, alive(), signal.SIGKILL)
        targets.update(remaining)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if not alive():
            return True
        time.sleep(poll)
    return not alive()


async def wait_for_exit(handle: ProcessHandle, interval: float = 0.5) -> None:
    """Wait until the handle's process is gone (a process this one did not start, say)."""
    delay = min(0.02, interval)
    while await asyncio.to_thread(handle.alive):
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, interval)
    await asyncio.to_thread(kill_leftovers, handle)


def kill_leftovers(handle: ProcessHandle) -> None:
    """Kill what the ended process of ``handle`` left running: its task's cgroup and the
    processes carrying its task marker (:mod:`.containment`), when it has them."""
    if handle.cgroup:
        containment.kill_cgroup(handle.cgroup)
    if handle.mark:
        root = handle.pid if same_process(handle) else None  # never a reused PID's children
        containment.kill_task_processes(root, handle.mark, handle.start_time)


def describe_exit(returncode: int | None) -> str:
    """Say how a process ended, in words a user can act on."""
    if returncode is None:
        return "the task's process ended without a result"
    if returncode < 0:
        sig = signal.Signals(-returncode)
        hint = (
            " (the OOM killer sends SIGKILL when memory runs out)" if sig == signal.SIGKILL else ""
        )
        return f"the task's process was killed by signal {sig.name} ({-returncode}){hint}"
    return f"the task's process exited with code {returncode} before returning a result"
