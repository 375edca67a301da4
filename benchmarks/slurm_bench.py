"""Slurm executor benchmarks against a real single-node cluster on 127.0.0.1 (started here).

Cancel latency: from ``ct.cancel()`` to the job's task process dead (state Z counts).
Throughput: 50 short tasks, total time, and how many squeue / sacct / scontrol / sbatch calls
were made (counted by logging wrappers around the real commands).
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import covalent_core as ct
from covalent_core.sdk.processes import is_dead

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import latency_ms, standalone  # noqa: E402

COMMANDS = ("sbatch", "squeue", "sacct", "scontrol", "scancel")


def _sleep_writing_pid(path: str, seconds: float) -> None:
    import os
    import time

    with open(path, "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(seconds)


def _noop(i: int) -> int:
    return i


def _shims(directory: Path) -> Path:
    log = directory / "calls.log"
    for name in COMMANDS:
        shim = directory / name
        shim.write_text(f'#!/bin/sh\necho "{name}" >> {log}\nexec /usr/bin/{name} "$@"\n')
        shim.chmod(0o755)
    return log


def measure(cancel_runs: int = 10, tasks: int = 50) -> dict[str, Any]:
    """Run both measurements; returns JSON-ready numbers."""
    from covalent_slurm import SlurmExecutor
    from pytest_covalent_servers.slurm import SlurmCluster

    cluster = SlurmCluster.start()
    scratch = Path(tempfile.mkdtemp(prefix="covalent-slurm-bench-"))
    try:
        log = _shims(scratch)
        executor = SlurmExecutor(
            options={"partition": "debug"},
            remote_workdir=str(scratch / "work"),
            python_path=str(Path(sys.executable).absolute()),
            slurm_conf=str(cluster.conf),
            slurm_path=str(scratch),
            poll_freq=1.0,
        )
        sleeper = ct.electron(_sleep_writing_pid, executor=executor)
        noop = ct.electron(_noop, executor=executor)

        @ct.lattice
        def one_sleeper(path: str) -> None:
            return sleeper(path, 600)

        @ct.lattice
        def many(n: int) -> list[int]:
            return [noop(i) for i in range(n)]

        ct.get_result(ct.dispatch(many)(1), wait=True, timeout=120)  # first contact
        samples = []
        for _ in range(cancel_runs):
            pid_file = scratch / f"{uuid.uuid4().hex}.pid"
            dispatch_id = ct.dispatch(one_sleeper)(str(pid_file))
            while not pid_file.exists() or not pid_file.read_text():
                time.sleep(0.01)
            pid = int(pid_file.read_text())
            start = time.perf_counter()
            ct.cancel(dispatch_id)
            while not is_dead(pid):
                time.sleep(0.001)
            samples.append(time.perf_counter() - start)
            ct.get_result(dispatch_id, wait=True, timeout=120)
        log.write_text("")
        start = time.perf_counter()
        result = ct.get_result(ct.dispatch(many)(tasks), wait=True, timeout=900)
        seconds = time.perf_counter() - start
        counted = log.read_text().split()
        return {
            "cancel_to_job_process_dead_ms": latency_ms(samples),
            "short_tasks": {
                "tasks": tasks,
                "status": str(result.status),
                "seconds": seconds,
                "poll_freq": 1.0,
                "calls": {name: counted.count(name) for name in COMMANDS},
            },
        }
    finally:
        cluster.stop()
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Table rows: (benchmark, result, target)."""
    c, t = result["cancel_to_job_process_dead_ms"], result["short_tasks"]
    n = t["calls"]
    return [
        (
            "slurm: cancel -> job's process dead",
            f"p50 {c['p50']:.0f} ms, p95 {c['p95']:.0f} ms",
            "p50 <= 1 s",
        ),
        (
            f"slurm: {t['tasks']} short tasks (poll {t['poll_freq']:g} s)",
            f"{t['seconds']:.1f} s; squeue {n['squeue']}, sacct {n['sacct']}, "
            f"scontrol {n['scontrol']}, sbatch {n['sbatch']} calls",
            "one squeue per poll",
        ),
    ]


if __name__ == "__main__":
    standalone(measure)
