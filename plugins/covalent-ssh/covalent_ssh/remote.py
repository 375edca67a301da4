"""The remote side of the SSH executor: run as ``python -c <this file's source> MODE ARGS``.

Standard library only, Linux ``/proc`` only; nothing is installed on the remote machine. Modes:

``check``                       print the interpreter version; exit 3 if cloudpickle is missing
``watch``                       serve tab-separated requests on stdin, one per line:
                                ``start DIR ARGV_JSON ENV_JSON`` starts the task detached, in its
                                own session, and answers ``started DIR JOB_JSON`` (idempotent: a
                                second start answers the first job) or ``error DIR MESSAGE``;
                                ``add DIR PID TICKS`` answers ``done DIR CODE`` when the task ends
                                (CODE: exit status, negative for a signal, or ``lost``)
``kill PID TICKS BOOT GRACE``   stop the task's process group: SIGTERM, GRACE s, SIGKILL; exit 0
                                once nothing of it runs (a reused PID is never touched)

A task runs under a monitor process that leads its session and process group, waits for the
task and writes its exit status to ``DIR/exitcode``; the task's output goes to ``DIR/stdout``
and ``DIR/stderr``. The monitor is the subreaper of the task's processes: one that leaves the
group and loses its parent (a double-forked daemon) stays below the monitor, and whatever
the task left running is killed when it ends, before the exit status is written.
"""

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time


def boot_id():
    with open("/proc/sys/kernel/random/boot_id") as fh:
        return fh.read().strip()


def stat(pid):
    """(state, ppid, pgrp, starttime) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[19])


def running(pid):
    """True while ``pid`` exists and is not a zombie (one reading of /proc: no race)."""
    info = stat(pid)
    return info is not None and info[0] not in ("Z", "X")


def alive(pid, ticks):
    """True while ``pid`` is the process started at ``ticks`` and not a zombie."""
    info = stat(pid)
    return info is not None and info[3] == ticks and info[0] not in ("Z", "X")


def write_atomic(path, text):
    with open(path + ".tmp", "w") as fh:
        fh.write(text)
    os.rename(path + ".tmp", path)


def monitor(directory, argv, env):
    """In the forked child: lead a new session, run the task, record how it ended."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    # A handler (not SIG_IGN, which the task would inherit): the monitor outlives a SIGTERM
    # to the group just long enough to record how the task ended.
    signal.signal(signal.SIGTERM, lambda *_: None)
    # Orphans of the task (a double-forked daemon) become the monitor's children, not init's:
    # they stay among its descendants, which are killed when the task ends or is cancelled.
    become_subreaper()
    pid = os.getpid()
    job = {"pid": pid, "pgid": pid, "start_ticks": stat(pid)[3], "boot_id": boot_id()}
    try:
        with (
            open(os.path.join(directory, "stdout"), "wb") as out,
            open(os.path.join(directory, "stderr"), "wb") as err,
        ):
            proc = subprocess.Popen(
                argv,
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=dict(os.environ, **env),
                umask=TASK_UMASK,
            )
        job["task_pid"] = proc.pid
        write_atomic(os.path.join(directory, "job.json"), json.dumps(job))
        while True:
            try:
                code = proc.wait()
                break
            except InterruptedError:
                continue
        kill_leftovers(pid)
    except OSError as exc:
        write_atomic(os.path.join(directory, "job.json"), json.dumps(job))
        with open(os.path.join(directory, "stderr"), "a") as fh:
            fh.write(f"cannot start the task: {exc}\n")
        code = 127
    write_atomic(os.path.join(directory, "exitcode"), str(code))


def become_subreaper():
    """PR_SET_CHILD_SUBREAPER (36); False where the kernel refuses."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def kill_leftovers(pid):
    """SIGKILL what the task left running below the monitor ``pid`` until nothing is left."""
    for _ in range(500):
        left = members(pid) - {pid}
        if not left:
            return
        signal_all(left, signal.SIGKILL)
        time.sleep(0.01)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass


def start(directory, argv, env):
    """Start the task unless it was started already; return its identity as JSON text."""
    job_file = os.path.join(directory, "job.json")
    if not os.path.exists(job_file):
        child = os.fork()
        if child == 0:
            try:
                monitor(directory, argv, env)
            finally:
                os._exit(0)
        deadline = time.monotonic() + 30
        while not os.path.exists(job_file):
            if time.monotonic() > deadline:
                raise RuntimeError("the task's monitor did not start within 30 s")
            time.sleep(0.001)
    with open(job_file) as fh:
        return fh.read().strip()


def reply(*parts):
    sys.stdout.write("\t".join(parts) + "\n")
    sys.stdout.flush()


def watch():
    watched = {}
    buffer = b""
    while True:
        ready, _, _ = select.select([0], [], [], 0.02)
        if ready:
            chunk = os.read(0, 1 << 20)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                parts = line.decode().split("\t")
                if parts[0] == "add" and len(parts) == 4:
                    watched[parts[1]] = (int(parts[2]), int(parts[3]))
                elif parts[0] == "start" and len(parts) == 4:
                    try:
                        job = start(parts[1], json.loads(parts[2]), json.loads(parts[3]))
                        reply("started", parts[1], job)
                    except Exception as exc:
                        reply("error", parts[1], f"cannot start the task: {exc}")
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        for directory, (pid, ticks) in list(watched.items()):
            code_file = os.path.join(directory, "exitcode")
            if not os.path.exists(code_file) and alive(pid, ticks):
                continue
            if os.path.exists(code_file):
                with open(code_file) as fh:
                    code = fh.read().strip()
            else:
                code = "lost"
            del watched[directory]
            reply("done", directory, code)


def members(pgid):
    """Live processes of the group and every descendant of them (even in a new session)."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = stat(int(name))
            if info is not None and info[0] not in ("Z", "X"):
                table[int(name)] = info
    found = {pid for pid, info in table.items() if info[2] == pgid}
    grew = True
    while grew:
        more = {pid for pid, info in table.items() if info[1] in found} - found
        found |= more
        grew = bool(more)
    return found


def signal_all(pids, sig):
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def kill(pid, ticks, boot, grace):
    if boot != boot_id():
        return 0  # the machine rebooted: the job is gone
    info = stat(pid)
    if info is not None and info[3] != ticks:
        return 0  # the PID now belongs to another process: ours ended long ago
    targets = members(pid)
    if not targets:
        return 0
    signal_all(targets, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        targets = {p for p in targets if running(p)} | members(pid)
        if not targets:
            return 0
        time.sleep(0.01)
    for _ in range(500):
        targets = {p for p in targets if running(p)} | members(pid)
        if not targets:
            return 0
        signal_all(targets, signal.SIGKILL)
        time.sleep(0.01)
    sys.stderr.write(f"processes still alive after SIGKILL: {sorted(targets)}\n")
    return 1


def check():
    print(sys.version.split()[0])
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        sys.stderr.write(f"{sys.executable} cannot import cloudpickle\n")
        sys.exit(3)


TASK_UMASK = os.umask(0o077)
"""The login's umask, for the task; the agent's own files (job, exit code, output) are
owner-only whatever it is."""


def main(argv):
    mode = argv[0]
    if mode == "check":
        check()
    elif mode == "watch":
        watch()
    elif mode == "kill":
        sys.exit(kill(int(argv[1]), int(argv[2]), argv[3], float(argv[4])))
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
