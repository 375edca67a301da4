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
            start_time=psutil.Process(pid).create_time(),
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


def same_process(handle: ProcessHandle) -> bool:
    """True if the handle's PID still belongs to the process it was taken from."""
    try:
        started = psutil.Process(handle.pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    return abs(started - handle.start_time) < START_TIME_TOLERANCE


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


def _signal_all(pgid: int, pids: set[int], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def kill_group(
    handle: ProcessHandle, grace: float = 3.0, poll: float = 0.005, *, signalled: bool = False
) -> bool:
    """Stop the handle's process group and every descendant: SIGTERM, ``grace`` s, SIGKILL.

    Returns True once all of them are dead (zombies count as dead), or if the handle's
    process is already gone or its PID now belongs to another process, which is left alone.
    The task's cgroup, if it has one, is emptied and removed either way. ``signalled``:
    :func:`terminate_first` sent the SIGTERM already (the handle's process was its own then
    and may be gone now): what is left in its cgroup still gets ``grace``.
    """
    try:
        return _kill_group(handle, grace, poll, signalled)
    finally:
        if handle.cgroup:
            containment.kill_cgroup(handle.cgroup)


def terminate_first(handle: ProcessHandle) -> bool:
    """Send :func:`kill_group`'s first SIGTERM now, when it is cheap and safe to: the handle's
    process is on this host and in a cgroup of its own (where all its processes are found
    after it died). A caller on an event loop sends it there, then runs :func:`kill_group` in
    a thread (which another busy thread may keep waiting for milliseconds), telling it so.
    True if it was sent."""
    if not handle.cgroup or handle.host != socket.gethostname() or not same_process(handle):
        return False
    _signal_all(
        handle.pgid, containment.cgroup_members(handle.cgroup) | {handle.pid}, signal.SIGTERM
    )
    return True


def _kill_group(handle: ProcessHandle, grace: float, poll: float, signalled: bool) -> bool:
    if handle.host != socket.gethostname():
        raise ValueError(
            f"job handle is for host {handle.host!r}, but this is {socket.gethostname()!r}; "
            "a local process can only be cancelled on the host that runs it"
        )
    if not signalled and not same_process(handle):
        kill_leftovers(handle)  # the worker is gone; what its task started may not be
        return True

    # Descendants that left the group (setsid) are found through the process tree, and those
    # no longer below it by the task's cgroup (which they cannot leave) or, without one, by
    # its marker: a scan of every process's environment, too slow to repeat while waiting
    # where a cgroup holds them all.
    def marked() -> set[int]:
        if handle.cgroup:
            return containment.cgroup_members(handle.cgroup)
        if handle.mark:
            return containment.marked(handle.mark, handle.start_time)
        return set()

    if signalled:
        # The worker and its cgroup had SIGTERM; the worker may be gone and its PID reused,
        # so the cgroup alone says what is left to wait for.
        escaped = marked()
    elif handle.cgroup:
        # Everything the task started is in its cgroup: signal at once, then look for what
        # left it (scanning the process table first would delay the cancel by milliseconds).
        first = containment.cgroup_members(handle.cgroup) | {handle.pid}
        _signal_all(handle.pgid, first, signal.SIGTERM)
        escaped = first | containment.descendants(handle.pid) | marked()
        _signal_all(handle.pgid, escaped - first, signal.SIGTERM)
    else:
        # The process tree is walked before the task's process dies and its children move.
        escaped = containment.descendants(handle.pid) | marked()
        escaped.add(handle.pid)
        _signal_all(handle.pgid, escaped, signal.SIGTERM)

    def alive() -> set[int]:
        escaped.update(marked())
        return {p for p in escaped if not is_dead(p)} | set(group_members(handle.pgid))

    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive():
            if handle.cgroup and handle.mark:
                # Once, after the fact: a privileged task could have moved a process out.
                containment.kill_task_processes(None, handle.mark, handle.start_time)
            return True
        time.sleep(poll)
    remaining = alive()
    if handle.cgroup:
        containment.kill_cgroup(handle.cgroup)
    _signal_all(handle.pgid, remaining, signal.SIGKILL)
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
