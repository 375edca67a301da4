"""covalent-dask against a real Dask scheduler with two one-thread workers on 127.0.0.1.

Wide graph (1,000 no-ops plus a reducer) through covalent-dask, through the local executor
with two workers, and as plain Dask (``client.map`` then one reducing ``submit``) on the same
cluster, interleaved round by round; medians. Then cancel latency: from ``ct.cancel()`` to the
task's process on the worker being dead.

Runs in the venv that has covalent-dask (``.venv-covalent-dask``): ``run.py`` starts it there.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import covalent_core as ct

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import latency_ms, standalone, wait_for_handle


def _noop(i: int) -> int:
    return i


def _count(values: list[int]) -> int:
    return len(values)


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


def _wide(executor: Any, n: int) -> float:
    noop = ct.electron(_noop, executor=executor)
    count = ct.electron(_count, executor=executor)

    @ct.lattice
    def wide(n: int) -> int:
        return count([noop(i) for i in range(n)])

    start = time.perf_counter()
    result = ct.get_result(ct.dispatch(wide)(n), wait=True, timeout=1800)
    seconds = time.perf_counter() - start
    if result.result != n:
        raise RuntimeError(f"wide graph ended {result.status}: {result.error}")
    return seconds


def _plain_dask(address: str, n: int) -> float:
    from distributed import Client

    with Client(address) as client:
        start = time.perf_counter()
        futures = client.map(_noop, range(n), pure=False)
        total = client.submit(_count, futures, pure=False).result()
        seconds = time.perf_counter() - start
    if total != n:
        raise RuntimeError(f"plain Dask counted {total}")
    return seconds


def measure(rounds: int = 3, n: int = 1000, cancel_runs: int = 10) -> dict[str, Any]:
    """Run every measurement; returns JSON-ready numbers."""
    from covalent_dask import DaskExecutor
    from pytest_covalent_servers.dask import DaskCluster

    from covalent_core import LocalExecutor
    from covalent_core.sdk import ProcessHandle

    cluster = DaskCluster.start(workers=2)
    try:
        dask = DaskExecutor(scheduler_address=cluster.address, cancel_grace=3.0)
        local = LocalExecutor(max_workers=2)
        _wide(dask, 20), _wide(local, 20), _plain_dask(cluster.address, 20)  # warm up
        times: dict[str, list[float]] = {"covalent_dask": [], "local": [], "plain_dask": []}
        for _ in range(rounds):
            times["covalent_dask"].append(_wide(dask, n))
            times["local"].append(_wide(local, n))
            times["plain_dask"].append(_plain_dask(cluster.address, n))
        sleeper = ct.electron(_sleep, executor=dask)

        @ct.lattice
        def one_sleeper() -> None:
            return sleeper(600)

        samples = []
        for _ in range(cancel_runs):
            dispatch_id = ct.dispatch(one_sleeper)()
            handle = wait_for_handle(dispatch_id)
            process = ProcessHandle.from_json(json.dumps(handle))
            start = time.perf_counter()
            ct.cancel(dispatch_id)
            while process.alive():
                time.sleep(0.001)
            samples.append(time.perf_counter() - start)
            ct.get_result(dispatch_id, wait=True, timeout=60)
        return {
            "tasks": n + 1,
            "rounds": rounds,
            "wide_seconds": {k: v for k, v in times.items()},
            "wide_median_s": {k: statistics.median(v) for k, v in times.items()},
            "cancel_to_worker_process_dead_ms": latency_ms(samples),
        }
    finally:
        cluster.stop()


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Table rows: (benchmark, result, target)."""
    m, c = result["wide_median_s"], result["cancel_to_worker_process_dead_ms"]
    tasks = result["tasks"]
    return [
        (
            f"dask: wide {tasks} tasks, 2 workers (median of {result['rounds']})",
            f"covalent-dask {m['covalent_dask']:.2f} s ({tasks / m['covalent_dask']:.0f}/s), "
            f"local {m['local']:.2f} s, plain Dask {m['plain_dask']:.2f} s "
            f"(covalent-dask/plain {m['covalent_dask'] / m['plain_dask']:.1f}x)",
            "",
        ),
        (
            "dask: cancel -> worker's task process dead",
            f"p50 {c['p50']:.0f} ms, p95 {c['p95']:.0f} ms",
            "within cancel_bound (15 s)",
        ),
    ]


if __name__ == "__main__":
    # --quick: one round and five cancels, for a look while developing.
    quick = "--quick" in sys.argv[1:]
    standalone(lambda: measure(rounds=1, cancel_runs=5) if quick else measure())
