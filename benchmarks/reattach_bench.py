"""Re-attaching after the dispatcher service is killed: how long until every job is watched again.

For 100 running local tasks and 20 Slurm jobs (a real single-node cluster, started here):
dispatch them, wait until every job's handle is stored, SIGKILL the service, start a new one
as a client does, and measure until the store says every job is re-attached (``jobs.attached_at``),
both from the client's request and from the moment the new service listened. Medians of
``rounds`` rounds; each round's tasks are cancelled afterwards.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import covalent_core as ct
from covalent_core.local.executor import LocalExecutor
from covalent_core.sdk.base import Executor
from covalent_core.service.client import request
from covalent_core.testing import kill_service

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import standalone


def _sleep(seconds: float) -> None:
    import time as _time

    _time.sleep(seconds)


def _round(executor: Executor, jobs: int) -> dict[str, float]:
    sleeper = ct.electron(_sleep, executor=executor)

    @ct.lattice
    def many(n: int) -> list[None]:
        return [sleeper(600) for _ in range(n)]

    dispatch_id = ct.dispatch(many)(jobs)
    deadline = time.monotonic() + 600
    while True:
        running = {t.node_id for t in ct.get_result(dispatch_id).tasks if t.job_handle}
        if len(running) == jobs:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(running)} of {jobs} jobs started")
        time.sleep(0.05)
    kill_service()
    asked = time.time()
    listening = float(request({"op": "ping"})["listening_at"])  # a client: a new service starts
    while True:
        tasks = ct.get_result(dispatch_id).tasks
        attached = [t.reattached_at for t in tasks if t.node_id in running]
        if all(attached):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{attached.count(None)} of {jobs} jobs not re-attached")
        time.sleep(0.01)
    last = max(a for a in attached if a is not None)
    ct.cancel(dispatch_id, wait=True, timeout=300)
    return {"from_request_s": last - asked, "from_listening_s": last - listening}


def _median(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]} | {"rounds": len(rounds)}


def measure(rounds: int = 3) -> dict[str, Any]:
    """Both measurements; JSON-ready numbers."""
    results: dict[str, Any] = {}
    local = LocalExecutor(max_workers=100)
    results["local_100"] = _median([_round(local, 100) for _ in range(rounds)])
    results["slurm_20"] = _slurm(rounds)
    return results


def _slurm(rounds: int) -> dict[str, Any]:
    try:
        from covalent_slurm import SlurmExecutor
        from pytest_covalent_servers.slurm import SlurmCluster
    except ImportError as exc:
        return {"skipped": f"{exc.name} is not installed"}
    if not Path("/usr/sbin/slurmctld").exists():
        return {"skipped": "slurmctld is missing (covalent-servers-install installs it)"}
    cluster = SlurmCluster.start()
    scratch = Path(tempfile.mkdtemp(prefix="covalent-reattach-bench-"))
    try:
        executor = SlurmExecutor(
            options={"partition": "debug"},
            remote_workdir=str(scratch),
            python_path=str(Path(sys.executable).absolute()),
            slurm_conf=str(cluster.conf),
            poll_freq=1.0,
        )
        return _median([_round(executor, 20) for _ in range(rounds)])
    finally:
        cluster.stop()


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Table rows: (benchmark, result, target)."""
    out = []
    for key, label in (("local_100", "100 running local tasks"), ("slurm_20", "20 Slurm jobs")):
        r = result[key]
        if "skipped" in r:
            out.append((f"re-attach {label}", f"skipped: {r['skipped']}", ""))
            continue
        out.append(
            (
                f"re-attach {label} after SIGKILL",
                f"{r['from_request_s']:.2f} s from the client's request "
                f"({r['from_listening_s']:.2f} s after the new service listened), "
                f"median of {r['rounds']}",
                "",
            )
        )
    return out


if __name__ == "__main__":
    standalone(measure)
