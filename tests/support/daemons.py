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
