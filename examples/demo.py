"""Demo: dispatch a workflow, cancel a long task and what depends on it, let the rest finish.

Runs on the embedded default (SQLite in a private data directory, the local executor).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

if "COVALENT_CORE_DATA_DIR" not in os.environ:
    os.environ["COVALENT_CORE_DATA_DIR"] = tempfile.mkdtemp(prefix="covalent-core-demo-")
os.environ.setdefault("COVALENT_CORE_IDLE_TIMEOUT", "5")

import covalent_core as ct
from covalent_core.cli import console, status_table
from covalent_core.sdk.processes import is_dead


@ct.electron
def simulate(hours: int) -> str:
    """A long simulation that also starts a helper process (both must die on cancel)."""
    import subprocess

    subprocess.Popen(["sleep", str(hours * 3600)])
    time.sleep(hours * 3600)
    return f"simulated {hours} h"


@ct.electron
def analyse(data: str) -> str:
    return f"analysis of {data}"


@ct.electron
def measure(sample: int) -> int:
    time.sleep(0.5)
    return sample * sample


@ct.electron
def summarise(values: list[int]) -> int:
    return sum(values)


@ct.lattice
def study(hours: int, samples: int) -> dict:
    long_run = simulate(hours)
    report = analyse(long_run)
    quick = summarise([measure(i) for i in range(samples)])
    return {"report": report, "quick": quick}


def main() -> int:
    dispatch_id = ct.dispatch(study)(hours=10, samples=4)
    console.print(f"dispatched study: {dispatch_id}")
    while not (node := ct.get_result(dispatch_id).get_node(0)).job_handle:
        time.sleep(0.05)
    pid = node.job_handle["pid"]
    console.print(f"simulate (task 0) is running as process group {pid}; cancelling it")
    start = time.perf_counter()
    report = ct.cancel(dispatch_id, task_ids=[0])
    returned = time.perf_counter() - start
    while not is_dead(pid):
        time.sleep(0.001)
    gone = time.perf_counter() - start
    console.print(str(report), highlight=False)
    console.print(
        f"cancel() returned in {returned * 1e3:.1f} ms; process gone after {gone * 1e3:.1f} ms"
    )
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    console.print(status_table(result))
    quick = result.get_node(max(n.node_id for n in result.tasks if n.name == "summarise"))
    console.print(
        f"dispatch {result.status}; the independent branch finished: quick = {quick.output}"
    )
    ok = result.status is ct.Status.CANCELLED and quick.status is ct.Status.COMPLETED
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
