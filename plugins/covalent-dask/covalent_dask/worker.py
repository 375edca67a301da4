"""What runs on a Dask worker: the task in a process of its own, behind a gate, and the
calls that stop it, read its output and remove its files.

A Dask task cannot be stopped once it runs in a worker's thread, so ours never runs user
code there. :func:`run_task` (an ``async`` Dask task, on the worker's event loop) hands the
payload to a warm covalent-core worker process of this Dask worker's own pool
(:class:`covalent_core.sdk.WorkerPool`: a parent that forks each task into a process
group, and a cgroup where the machine gives one), but only once the dispatcher has stored
the task's handle: the handle (host, PID and start time of that process, the task marker
its children inherit, the Dask worker's address) is published in a Dask ``Variable`` and the
payload is sent when the dispatcher answers ``go`` in another. The cancel is
:func:`kill_task`, sent to that Dask worker with ``Client.run``: TERM, grace, KILL of the
process group, its cgroup and every process carrying the task's marker, the start time
checked so that a reused PID is never signalled.

Each attempt has its own variables. If the Dask worker dies, Dask starts the task again
elsewhere: the new attempt finds the first one's handle, kills what is left of it when it is
on the same host, and returns without running anything (:data:`LOST`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from covalent_core.errors import JobLostError
from covalent_core.local.pool import reattach_worker
from covalent_core.sdk import ProcessHandle, TaskOutcome, WorkerPool, kill_group
from covalent_core.sdk.runner import value_ref_path
from covalent_core.values import read_text

GATE_TIMEOUT = 120.0
"""Seconds a task waits for ``go``: a dispatcher that died before storing its handle never
answers, and the task then ends without running."""
KILL_GRACE = 1.0
GO = "go"
STOP = "stop"
LOST = "lost"
SCRATCH = "covalent-core"

_pool: WorkerPool | None = None


class _Stopped(Exception):
    """The gate said stop: the task must not run."""


def pool(worker: Any) -> WorkerPool:
    """This Dask worker's pool of warm processes, one per thread of the worker."""
    global _pool
    if _pool is None:
        _pool = WorkerPool(sys.executable, max(1, int(worker.state.nthreads)))
    return _pool


def task_directory(worker: Any, name: str) -> Path:
    """The task's directory in the worker's local directory."""
    return Path(worker.local_directory) / SCRATCH / name


async def run_task(
    payload: bytes, name: str, handle_var: str, gate_var: str, workdir: str | None = None
) -> dict[str, Any]:
    """Run one task on this worker; ``{"outcome": {...TaskOutcome's fields}}``, or
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
    await asyncio.to_thread(_prepare, directory, workdir)

    async def started(handle: ProcessHandle) -> None:
        await published.set(
            {**handle.to_dict(), "worker": worker.address, "dir": str(directory), "gate": gate_var}
        )
        try:
            answer = await Variable(gate_var, client=client).get(timeout=GATE_TIMEOUT)
        except (asyncio.TimeoutError, TimeoutError):
            answer = STOP
        if answer != GO:
            raise _Stopped

    try:
        # Shielded: Dask cancels an async task whose client went away, but a task that runs
        # goes on for the next dispatcher to re-attach to; only a cancel kills it.
        outcome = await asyncio.shield(
            pool(worker).run(payload, directory, started, kill_grace=KILL_GRACE)
        )
    except _Stopped:
        await asyncio.to_thread(shutil.rmtree, directory, True)
        return {"stopped": True}
    return {"outcome": await asyncio.to_thread(portable, outcome, directory)}


def portable(outcome: TaskOutcome, directory: Path) -> dict[str, Any]:
    """The outcome's fields, with a big stream read from the file the pool left it in (on
    this machine, which the dispatcher may not share) and that file removed; a task killed
    with its process (a cancel) has its streams only in its directory: read there."""
    fields = dataclasses.asdict(outcome)
    for name in ("stdout", "stderr"):
        text = fields[name]
        resolved = read_text(text)
        if resolved is not text:
            with contextlib.suppress(OSError):
                os.unlink(value_ref_path(text.encode()))
        if not resolved:
            resolved = (read_file(str(directory / name)) or b"").decode(errors="replace")
        fields[name] = resolved
    return fields


def _prepare(directory: Path, workdir: str | None) -> None:
    # Made before the handle is published: it names the task's files from the start.
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if workdir:  # where the task runs (the runner moves there)
        Path(workdir).expanduser().mkdir(parents=True, exist_ok=True)


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


async def task_outcome(handle: dict[str, Any], directory: str, wait: float) -> dict[str, Any]:
    """(``Client.run``.) Wait up to ``wait`` seconds for the task's outcome in ``directory``:
    ``{"outcome": {...}}``, ``{"running": True}``, ``{"never_started": True}``, or
    ``{"lost": why}`` when its process is gone without one."""
    waiting = asyncio.ensure_future(reattach_worker(_process(handle), Path(directory)))
    try:
        outcome = await asyncio.wait_for(asyncio.shield(waiting), wait)
    except (asyncio.TimeoutError, TimeoutError):
        waiting.cancel()
        return {"running": True}
    except JobLostError as exc:
        return {LOST: str(exc)}
    if outcome is None:
        return {"never_started": True}
    return {"outcome": await asyncio.to_thread(portable, outcome, Path(directory))}


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
