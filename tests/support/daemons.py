"""Tasks that misbehave on purpose: daemons that escape their task, state left for the next."""

from __future__ import annotations

import os
import time
from pathlib import Path


def start_daemon(pid_file: str) -> int:
    """Double-fork a daemon into a new session (its parent exits at once); its PID."""
    read_end, write_end = os.pipe()
    first = os.fork()
    if first == 0:
        os.close(read_end)
        os.setsid()
        if os.fork() == 0:
            os.write(write_end, str(os.getpid()).encode())
            os.close(write_end)
            for fd in (0, 1, 2):
                os.close(fd)
            time.sleep(600)
            os._exit(0)
        os._exit(0)
    os.close(write_end)
    pid = int(os.read(read_end, 32).decode())
    os.close(read_end)
    os.waitpid(first, 0)
    Path(pid_file).write_text(str(pid))
    return pid


def daemon_then_return(pid_file: str) -> int:
    return start_daemon(pid_file)


def daemon_then_sleep(pid_file: str, seconds: float) -> None:
    start_daemon(pid_file)
    time.sleep(seconds)


def poison() -> str:
    """Leave everything a warm worker could carry over to the next task."""
    import signal
    import socket
    import sys

    import daemons

    os.environ["POISON"] = "yes"
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    socket.setdefaulttimeout(3.5)
    os.chdir("/")
    daemons.GLOBAL = "poisoned"  # type: ignore[attr-defined]
    sys.stdout.close()
    return "poisoned"


def inspect_state(_after: str) -> dict:
    """What the next task sees."""
    import signal
    import socket

    import daemons

    print("stdout works")
    return {
        "poison": os.environ.get("POISON"),
        "sigterm": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        "socket_timeout": socket.getdefaulttimeout(),
        "cwd": os.getcwd(),
        "global": getattr(daemons, "GLOBAL", None),
        "own_group": os.getpgid(0) == os.getpid(),
    }


def poison_all(log: str) -> int:
    """Change everything a pack resets between its tasks; return this process's PID."""
    import resource
    import signal
    import socket
    import sys
    import threading

    import daemons

    with open(log, "a") as fh:
        fh.write("poison\n")
    os.environ["POISON"] = "yes"
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, lambda *_: None)
    socket.setdefaulttimeout(3.5)
    os.chdir("/")
    os.umask(0o000)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 64), hard))
    sys.path.insert(0, "/poisoned/path")
    daemons.GLOBAL = "poisoned"  # type: ignore[attr-defined]
    sys.stdout.close()
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - left open on purpose
    open(log, "rb")  # noqa: SIM115 - a descriptor left open on purpose
    del threading
    return os.getpid()


def inspect_all(log: str) -> dict:
    """What a task after :func:`poison_all` in the same pack sees."""
    import resource
    import signal
    import socket
    import sys

    import daemons

    with open(log, "a") as fh:
        fh.write("inspect\n")
    print("stdout works")
    print("stderr works", file=sys.stderr)
    umask = os.umask(0o022)
    os.umask(umask)
    return {
        "pid": os.getpid(),
        "poison": os.environ.get("POISON"),
        "sigterm": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        "sigusr1": signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL,
        "socket_timeout": socket.getdefaulttimeout(),
        "cwd": os.getcwd(),
        "umask_changed": umask == 0o000,
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "poisoned_path": "/poisoned/path" in sys.path,
        "module_state": getattr(daemons, "GLOBAL", None),
        "log_open": any(
            os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(log)
            for fd in os.listdir("/proc/self/fd")
        ),
    }


def start_thread_and_return() -> int:
    """Leave a thread running: the process cannot be reused for another task."""
    import threading
    import time

    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
    return os.getpid()


def own_pid(_index: int) -> int:
    return os.getpid()
