"""Observing facts while testing executors: waiting for them, dispatching one-task workflows.

Needs no pytest: benchmarks and scripts use these too.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

import covalent_core as ct

from ..sdk.base import Executor


def wait_until(
    check: Callable[[], Any],
    timeout: float = 30.0,
    what: str = "the condition held",
    interval: float = 0.02,
) -> Any:
    """Return the first truthy ``check()``; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


def dispatch_task(
    function: Callable[..., Any],
    executor: Executor | str,
    *args: Any,
    timeout: float | None = None,
    environment: dict[str, Any] | None = None,
    **kwargs: Any,
) -> str:
    """Dispatch a workflow of one task, ``function(*args, **kwargs)``; its node id is 0.

    ``environment``: the electron's ``deps_bash``, ``call_before``, ... (by keyword)."""
    task = ct.electron(executor=executor, timeout=timeout, **(environment or {}))(function)

    @ct.lattice
    def one_task(*a: Any, **kw: Any) -> Any:
        return task(*a, **kw)

    return ct.dispatch(one_task)(*args, **kwargs)


def finished_task(dispatch_id: str, timeout: float = 120.0) -> ct.NodeResult:
    """Wait for a :func:`dispatch_task` dispatch to end; its task's node."""
    return ct.get_result(dispatch_id, wait=True, timeout=timeout).get_node(0)


def read_lines(proc: subprocess.Popen[str], count: int, timeout: float) -> list[str]:
    """Up to ``count`` lines of ``proc``'s stdout, as many as came within ``timeout`` s."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for _ in range(count):
            line = proc.stdout.readline()
            if not line:
                return
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        try:
            seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            break
    return seen


def marker_processes(marker: str) -> list[str]:
    """Processes on this machine whose command line carries ``marker``."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = proc.info.get("cmdline") or []
        if marker in cmdline and proc.info.get("status") != psutil.STATUS_ZOMBIE:
            found.append(f"pid {proc.info['pid']}: {' '.join(cmdline)}")
    return found


def kill_service() -> int:
    """SIGKILL the dispatcher service of the current store, as a crash would; its PID.

    Returns once the process is gone. Nothing else is touched: its jobs keep running.
    """
    from ..sdk.processes import is_dead
    from ..service.client import request

    pid = int(request({"op": "ping"})["pid"])
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: is_dead(pid), timeout=30, what=f"service {pid} died")
    return pid


def service_pid() -> int | None:
    """The PID of the running dispatcher service of the current store (None: none runs)."""
    from ..errors import ServiceError
    from ..service.client import request

    try:
        return int(request({"op": "ping"}, start=False, timeout=5)["pid"])
    except (ServiceError, OSError):
        return None


def peak_rss_mb(pid: int) -> float:
    """The highest resident memory ``pid`` has had so far (``VmHWM``), in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        lines = fh.read().splitlines()
    for line in lines:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"process {pid} reports no peak resident memory")


def stop_all_triggers() -> list[str]:
    """Disarm every armed trigger of the current store (a test's teardown: the service would
    go on running them, and stay up for them); their ids."""
    from ..store import open_store
    from ..store import triggers as rows
    from ..triggers import stop_triggers

    with open_store().read() as conn:
        armed = rows.list_triggers(conn, armed_only=True)
    return stop_triggers(sorted({r.dispatch_id for r in armed})) if armed else []
