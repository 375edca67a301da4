"""The task functions the conformance suite runs. Pickled by value: the resource needs only
Python and cloudpickle, not covalent-core."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import cloudpickle


def named(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    """A copy of ``function`` called ``name`` (the node's name, which the gate keys on)."""

    def task(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    task.__name__ = task.__qualname__ = name
    return task


def add(x: int, y: int) -> int:
    return x + y


def combine(a: int, b: int = 0, *, label: str = "") -> str:
    return f"{label}:{a + b}"


def grow(data: bytes) -> bytes:
    """Return the 50 MB argument with one byte more: a 50 MB result."""
    return data + b"!"


def explode(message: str) -> None:
    raise ValueError(message)


def die() -> None:
    """End the task's process without a result, the way the OOM killer would."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def nap(seconds: float) -> str:
    import time

    time.sleep(seconds)
    return "rested"


def long_running(marker: str, seconds: float = 600.0) -> str:
    """Start a child process that carries ``marker`` in its argv, then sleep.

    A correct cancel stops the task and its child; the suite looks for the marker afterwards.
    """
    import subprocess
    import sys
    import time

    subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", marker],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(seconds)
    return "finished"


cloudpickle.register_pickle_by_value(sys.modules[__name__])


def daemonize(marker: str, then_sleep: float = 0.0) -> str:
    """Double-fork a daemon into a new session that carries ``marker`` in its argv (its parent
    exits at once, so it is neither in the task's process group nor below the task), then
    sleep ``then_sleep`` s and return. An executor that contains its tasks kills it with them.
    """
    import os
    import sys
    import time

    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", marker])
        os._exit(0)
    os.wait()
    time.sleep(then_sleep)
    return "daemon started"


def say(word: str) -> str:
    """Print ``word`` on the task's stdout and return it."""
    print(word, flush=True)
    return word


def where_prepared(tag: str) -> dict[str, Any]:
    """A ``call_before``: what it was given and the process it ran in."""
    import os

    return {"tag": tag, "pid": os.getpid()}


def read_prepared(filename: str, setup: Any = None) -> dict[str, Any]:
    """Read (and remove) ``filename`` in the temporary directory, which a ``DepsBash`` wrote;
    return its text, what ``call_before`` passed as ``setup``, and this process's PID."""
    import os
    import tempfile

    path = os.path.join(tempfile.gettempdir(), filename)
    with open(path, encoding="utf-8", newline="") as fh:
        text = fh.read()
    os.unlink(path)
    return {"file": text, "setup": setup, "pid": os.getpid()}


def talk_until_cancelled() -> None:
    """Print a line every 0.1 s; never return."""
    import time

    for i in range(100_000):
        print(f"line {i}", flush=True)
        time.sleep(0.1)
