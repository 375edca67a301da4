"""What runs on a Dask worker: the task in a process of its own, behind a gate, and the
calls that stop it, read its output and remove its files.

A Dask task cannot be stopped once it runs in a worker's thread, so ours never runs user
code there. :func:`run_task` (an ``async`` Dask task, on the worker's event loop) starts
covalent-core's runner as a new process session held at a gate, publishes its handle (host,
PID, start time, task marker, worker address) in a Dask ``Variable``, and lets it run only
when the dispatcher, having stored that handle, answers ``go`` in another. The cancel is
:func:`kill_task`, sent to that worker with ``Client.run``: TERM, grace, KILL of the
process group and of every process carrying the task's marker, with the start time checked so
that a reused PID is never signalled.

Each attempt has its own variables. If the worker dies, Dask starts the task again elsewhere:
the new attempt finds the first one's handle, kills what is left of it when it is on the same
host, and returns without running anything (:data:`LOST`); the node fails with that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from covalent_core.executors import RUNNER_PATH, ProcessHandle, kill_group, start_gated

GATE_TIMEOUT = 120.0
"""Seconds a started task waits for ``go``: a dispatcher that died before storing its
handle never answers, and the task then ends without running."""
GO = "go"
STOP = "stop"
LOST = "lost"
SCRATCH = "covalent-core"


def task_directory(worker: Any, name: str) -> Path:
    """The task's directory in the worker's local directory."""
    return Path(worker.local_directory) / SCRATCH / name


async def run_task(
    payload: bytes, name: str, handle_var: str, gate_var: str, workdir: str | None = None
) -> dict[str, Any]:
    """Run one task on this worker; return its exit code, outcome and output.

    ``{"code": int, "outcome": bytes | None, "stdout": bytes, "stderr": bytes}``, or
    ``{"stopped": True}`` when the gate said stop, or ``{"lost": worker}`` when an earlier
    attempt of the same task had started (on a worker that then died)."""
    from distributed import Variable, get_client, get_worker

    worker = get_worker()
    client = get_client()
    published = Variable(handle_var, client=client)
    with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
        earlier = await published.get(timeout=0)
        await asyncio.to_thread(_kill_if_here, earlier)
        return {LOST: earlier.get("worker", "?")}
    directory = task_directory(worker, name)
    await asyncio.to_thread(_prepare, directory, payload, workdir)
    with open(directory / "stdout", "wb") as out, open(directory / "stderr", "wb") as err:
        argv = [sys.executable, str(RUNNER_PATH), "payload", "outcome"]
        proc = await start_gated(argv, directory / "started", cwd=directory, stdout=out, stderr=err)
    handle = {**proc.handle.to_dict(), "worker": worker.address, "dir": str(directory)}
    await published.set(handle)
    try:
        answer = await Variable(gate_var, client=client).get(timeout=GATE_TIMEOUT)
    except (asyncio.TimeoutError, TimeoutError):
        answer = STOP
    if answer != GO:
        await asyncio.to_thread(kill_group, proc.handle, 0.0)
        await proc.proc.wait()
        return {"stopped": True}
    await proc.release()
    code = await proc.wait()
    return {"code": code, **await asyncio.to_thread(collect, str(directory))}


def _prepare(directory: Path, payload: bytes, workdir: str | None) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if workdir:  # where the task runs (the runner moves there)
        Path(workdir).expanduser().mkdir(parents=True, exist_ok=True)
    (directory / "payload").write_bytes(payload)


def _kill_if_here(handle: dict[str, Any]) -> None:
    """Stop an earlier attempt's process if it runs on this host (its worker died)."""
    if handle.get("host") == socket.gethostname():
        kill_group(_process(handle), 1.0)


def _process(handle: dict[str, Any]) -> ProcessHandle:
    return ProcessHandle(
        host=handle["host"],
        pid=handle["pid"],
        pgid=handle["pgid"],
        start_time=handle["start_time"],
        mark=handle.get("mark"),
        cgroup=handle.get("cgroup"),
    )


def collect(directory: str) -> dict[str, Any]:
    """The outcome (None if the runner wrote none) and output the task left in ``directory``."""

    def read(name: str) -> bytes | None:
        try:
            return (Path(directory) / name).read_bytes()
        except OSError:
            return None

    return {
        "outcome": read("outcome"),
        "stdout": read("stdout") or b"",
        "stderr": read("stderr") or b"",
    }


async def kill_task(handle: dict[str, Any], grace: float) -> bool:
    """(``Client.run`` on the task's worker.) Kill the task's process group and marked
    processes: TERM, ``grace`` seconds, KILL; True once they are gone."""
    return await asyncio.to_thread(kill_group, _process(handle), grace)


async def task_running(handle: dict[str, Any]) -> bool:
    """(``Client.run``.) True while the task's very process runs."""
    return await asyncio.to_thread(_process(handle).alive)


def read_file(path: str) -> bytes | None:
    """(``Client.run``.) A file of the task's directory, or None."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def remove_directory(path: str) -> None:
    """(``Client.run``.) Remove the task's directory, if it is one of ours."""
    if Path(path).parent.name == SCRATCH and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
