"""Scale: covalent-core beside Dask distributed, and how it grows from 1,000 to 100,000 tasks.

    .venv/bin/python benchmarks/scale_bench.py [--rounds 5] [--sizes 1000 10000 100000]
        [--cancels 30]

Dask runs in its own venv (``.venv-dask``, made on first use: it needs a newer cloudpickle
than the Braket SDK allows) as a warm ``LocalCluster(n_workers=2, threads_per_worker=1,
processes=True)`` answering commands, so that its rounds and ours alternate: a busy machine
slows both alike; medians and ratios are printed. Measured end to end as a user sees it:
dispatch to ``get_result(wait=True)`` returning. Then where a wide graph's CPU goes per task
(the service, its local workers) beside the floor of a fresh process per task (a bare fork
and exit of a warm worker) and the CPU twice Dask's rate would leave. Then the scaling
table: for each size, a wide graph's dispatcher CPU per task, submit time per task, the
service's peak RSS, the store's size, and the time to cancel that many nodes that have not
started; cancel latency (``ct.cancel`` of the dispatch, and of the task alone, to the task's
process gone, same process, watched from the call) beside Ray's ``ray.cancel(force=True)``
(Ray 2.40 in ``.venv-ray``, made on first use, interleaved); and the wait latency (the
stored end to ``get_result`` returning). Writes ``results/scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("COVALENT_CORE_DATA_DIR", tempfile.mkdtemp(prefix="covalent-core-scale-"))
# The defaults are measured, not the settings of whoever runs it.
os.environ.setdefault(
    "COVALENT_CORE_CONFIG", os.path.join(os.environ["COVALENT_CORE_DATA_DIR"], "config.toml")
)
os.environ.setdefault("COVALENT_CORE_IDLE_TIMEOUT", "60")

import psutil
from rich.console import Console
from rich.table import Table

import covalent_core as ct
from covalent_core import config
from covalent_core.errors import ServiceError
from covalent_core.local.worker import IDLE_PACK
from covalent_core.service.client import request
from covalent_core.testing import peak_rss_mb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from common import latency_ms, write_results  # noqa: E402
from run import (  # noqa: E402 - the graphs and measures every benchmark here uses
    cancel_latency_packed,
    cancel_latency_same_process,
    chain,
    noop,
    wide,
)


@ct.electron
def hold(path):
    import os
    import time

    while not os.path.exists(path):
        time.sleep(0.05)


@ct.lattice
def held(n, path):
    gate = hold(path)
    return [ct.wait(noop(i), [gate]) for i in range(n)]


class Peer:
    """A peer framework in its own venv (made on first use), answering one command per line
    with one JSON line, warm between commands."""

    def __init__(self, name: str, requirement: str) -> None:
        venv = ROOT / f".venv-{name}"
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", requirement], check=True)
        self.name = name
        self.proc = subprocess.Popen(
            [str(venv / "bin" / "python"), str(HERE / "peers" / f"{name}_peer.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(
                f"the {self.name} peer exited; run benchmarks/peers/{self.name}_peer.py to see why"
            )
        return json.loads(line)

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(60)


def ours(lattice: Any, *args: Any) -> float:
    """Dispatch to ``get_result(wait=True)`` returning, in seconds."""
    start = time.perf_counter()
    result = ct.get_result(ct.dispatch(lattice)(*args), wait=True, timeout=3600)
    elapsed = time.perf_counter() - start
    assert result.status is ct.Status.COMPLETED, result
    return elapsed


def ours_cold(n: int) -> float:
    """As :func:`ours`, with no service running first (it starts, then its workers)."""
    request({"op": "shutdown"})
    wait_for_no_service()
    return ours(wide, n)


@ct.electron
def note_start(path: str) -> None:
    import time as _time

    with open(path, "w") as fh:
        fh.write(repr(_time.time()))


@ct.lattice
def first_task(path: str) -> None:
    return note_start(path)


def cold_first_task() -> float:
    """Seconds from ``dispatch()`` with no service running to its first task running."""
    request({"op": "shutdown"})
    wait_for_no_service()
    path = Path(tempfile.mkdtemp()) / "started"
    began = time.time()
    dispatch_id = ct.dispatch(first_task)(str(path))
    ct.get_result(dispatch_id, wait=True, timeout=120)
    return float(path.read_text()) - began


def wait_for_no_service() -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            request({"op": "ping"}, start=False, timeout=1)
        except ServiceError:
            return
        time.sleep(0.05)


def service() -> psutil.Process:
    return psutil.Process(int(request({"op": "ping"})["pid"]))


def side_by_side(rounds: int) -> dict[str, Any]:
    dask = Peer("dask", "dask[distributed]")
    ours(wide, 50)
    samples: dict[str, list[float]] = {}
    try:
        for _ in range(rounds):
            for name, mine, theirs in (
                ("wide 1000, warm", lambda: ours(wide, 1000), "wide 1000"),
                ("chain 200, warm", lambda: ours(chain, 200), "chain 200"),
                ("wide 1000, cold", lambda: ours_cold(1000), "cold 1000"),
            ):
                samples.setdefault(f"{name}|ours", []).append(mine())
                samples.setdefault(f"{name}|dask", []).append(float(dask.ask(theirs)["seconds"]))
            samples.setdefault("first task, no service|ours", []).append(cold_first_task())
    finally:
        dask.close()
    rows = {}
    for key in samples:
        name, side = key.split("|")
        rows.setdefault(name, {})[side] = statistics.median(samples[key])
    for row in rows.values():
        if "dask" in row:
            row["ratio"] = row["dask"] / row["ours"]  # > 1: we are faster
    return rows


FORK_PROBE = r"""
import os, resource, sys
import covalent_core.local.worker as worker
worker._warm_up()  # as a warm worker is, before it forks a task
def cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
n = int(sys.argv[1])
before = cpu()
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print((cpu() - before) / n)
"""


def cpu_per_task(dask_wide_seconds: float, n: int = 1000) -> dict[str, float]:
    """Where a wide graph's CPU goes, per task: the service (loop and threads) and its local
    workers (their forked tasks included); beside the floor a fresh process per task sets (a
    bare fork and exit of a warm worker) and the budget twice Dask's rate leaves."""
    proc = service()
    workers = proc.children()

    def cpu(p: psutil.Process) -> float:
        t = p.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    time.sleep(IDLE_PACK + 0.5)  # the processes of earlier packs have ended: not counted
    service_before, workers_before = cpu(proc), sum(cpu(w) for w in workers)
    ours(wide, n)
    service_ms = 1e3 * (cpu(proc) - service_before) / (n + 1)
    # A pack's process ends a moment after its dispatch (it waits for more): its CPU is
    # its worker's once it has.
    time.sleep(IDLE_PACK + 0.5)
    workers_ms = 1e3 * (sum(cpu(w) for w in workers) - workers_before) / (n + 1)
    probe = subprocess.run(
        [sys.executable, "-c", FORK_PROBE, "300"], capture_output=True, text=True, check=True
    )
    cpus = len(os.sched_getaffinity(0))
    return {
        "service_ms": service_ms,
        "workers_ms": workers_ms,
        "fork_exit_ms": 1e3 * float(probe.stdout),
        "budget_2x_dask_ms": 1e3 * cpus * dask_wide_seconds / 2 / (n + 1),
        "cpus": cpus,
    }


def scaling(size: int) -> dict[str, Any]:
    proc = service()
    before = proc.cpu_times()
    start = time.perf_counter()
    dispatch_id = ct.dispatch(wide)(size)
    submitted = time.perf_counter() - start
    result = ct.get_result(dispatch_id, wait=True, timeout=7200)
    elapsed = time.perf_counter() - start
    after = proc.cpu_times()
    assert result.status is ct.Status.COMPLETED, result
    cpu = (after.user + after.system) - (before.user + before.system)
    gate = Path(tempfile.mkdtemp()) / "never"
    held_id = ct.dispatch(held)(size, str(gate))
    while not ct.get_result(held_id).get_node(0).job_handle:
        time.sleep(0.02)
    wall, start = time.time(), time.perf_counter()
    ct.cancel(held_id)
    returned = time.perf_counter() - start
    read_from = time.perf_counter()
    ended = ct.get_result(held_id, wait=True, timeout=3600)
    read = time.perf_counter() - read_from
    settled = ended.ended_at - wall  # every node CANCELLED and the dispatch ended, in the store
    store = sum(f.stat().st_size for f in config.data_dir().glob("*.db*"))
    return {
        "tasks": size + 1,
        "seconds": elapsed,
        "tasks_per_s": (size + 1) / elapsed,
        "dispatcher_cpu_ms_per_task": 1e3 * cpu / (size + 1),
        "submit_us_per_task": 1e6 * submitted / (size + 1),
        "service_peak_rss_mb": peak_rss_mb(proc.pid),
        "store_mb": store / 2**20,
        "cancel_returned_s": returned,
        "cancel_all_settled_s": settled,
        "result_read_s": read,
    }


def cancel_versus_ray(runs: int) -> dict[str, dict[str, float]]:
    """Cancel to the task's process gone, same process, in turn: ours of the whole dispatch,
    ours of the task alone (``task_ids=[0]``), and Ray's (force=True)."""
    ray = Peer("ray", "ray==2.40.0")
    scratch = tempfile.mkdtemp(prefix="ray-peer-")
    samples: dict[str, list[float]] = {
        "covalent-core": [],
        "covalent-core, one task": [],
        "covalent-core, a task of a pack": [],
        "Ray": [],
    }
    try:
        ray.ask(f"cancel {scratch}")  # its first worker starts
        cancel_latency_same_process(1)
        cancel_latency_packed(1)
        for _ in range(runs):
            samples["covalent-core"].extend(cancel_latency_same_process(1))
            samples["covalent-core, one task"].extend(cancel_latency_same_process(1, [0]))
            samples["covalent-core, a task of a pack"].extend(cancel_latency_packed(1))
            answer = ray.ask(f"cancel {scratch}")
            if "ms" in answer:
                samples["Ray"].append(float(answer["ms"]) / 1e3)
            else:
                print(f"Ray sample failed: {answer.get('error')}", file=sys.stderr)
    finally:
        ray.close()
    return {name: latency_ms(values) for name, values in samples.items()}


def wait_latency(runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        result = ct.get_result(ct.dispatch(wide)(1), wait=True, timeout=60)
        samples.append(1e3 * (time.time() - result.end_time.timestamp()))
    samples.sort()
    return {"p50_ms": statistics.median(samples), "max_ms": samples[-1], "n": runs}


def targets_table(results: dict[str, Any]) -> Table:
    """The measures the speed issue set targets for, each beside its target."""
    versus = results["versus_dask"]
    cancels = results["cancel_latency"]
    scaling_rows = results["scaling"]
    table = Table("measure", "now", "target", "met", title="targets")

    def row(name: str, value: str, target: str, met: bool) -> None:
        table.add_row(name, value, target, "yes" if met else "no")

    for key, target in (
        ("wide 1000, warm", 2.0),
        ("chain 200, warm", 1.5),
        ("wide 1000, cold", 1.0),
    ):
        ratio = versus[key]["ratio"]
        row(f"{key}, Dask time / ours", f"{ratio:.2f}", f">= {target:g}", ratio >= target)
    first = versus["first task, no service"]["ours"]
    row("dispatch to first task running, no service", f"{first:.3f} s", "<= 0.3 s", first <= 0.3)
    cpu = results["cpu_per_task"]["service_ms"]
    row("dispatcher CPU per task, wide", f"{cpu:.2f} ms", "<= 1.0 ms", cpu <= 1.0)
    if len(scaling_rows) > 1:
        first_row, last_row = scaling_rows[0], scaling_rows[-1]
        growth = last_row["dispatcher_cpu_ms_per_task"] / first_row["dispatcher_cpu_ms_per_task"]
        rss = [r["service_peak_rss_mb"] * 1024 / r["tasks"] for r in scaling_rows]
        row(
            f"linear {first_row['tasks']:,} -> {last_row['tasks']:,}: CPU per task",
            f"x{growth:.2f}",
            "holds",
            growth <= 1.5,
        )
        row("peak RSS per task (KB)", " / ".join(f"{v:.1f}" for v in rss), "holds", True)
    for name in ("covalent-core", "covalent-core, one task", "covalent-core, a task of a pack"):
        p50, p95 = cancels[name]["p50"], cancels[name]["p95"]
        row(
            f"cancel -> process gone ({name})",
            f"{p50:.1f} / {p95:.1f} ms",
            "<= 5 / <= 10 ms",
            p50 <= 5 and p95 <= 10,
        )
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--cancels", type=int, default=30, help="cancel-latency samples")
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 130)
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
    results["versus_dask"] = side_by_side(args.rounds)
    table = Table("graph", "covalent-core", "Dask", "Dask time / ours", title="beside Dask")
    for name, row in results["versus_dask"].items():
        if "dask" in row:
            ratio = f"{row['ratio']:.2f}"
            table.add_row(name, f"{row['ours']:.3f} s", f"{row['dask']:.3f} s", ratio)
        else:
            table.add_row(name, f"{row['ours']:.3f} s", "-", "-")
    console.print(table)
    results["cpu_per_task"] = c = cpu_per_task(results["versus_dask"]["wide 1000, warm"]["dask"])
    console.print(
        f"CPU per task, wide 1,000: service {c['service_ms']:.2f} ms + local workers "
        f"{c['workers_ms']:.2f} ms; a bare fork and exit of a warm worker costs "
        f"{c['fork_exit_ms']:.2f} ms; twice Dask's rate leaves {c['budget_2x_dask_ms']:.2f} ms "
        f"of CPU per task for everything on {c['cpus']} CPUs"
    )
    results["cancel_latency"] = cancel_versus_ray(args.cancels)
    table = Table("cancel to process gone", "p50", "p95", title="beside Ray (same process)")
    for name, row in results["cancel_latency"].items():
        table.add_row(name, f"{row['p50']:.1f} ms", f"{row['p95']:.1f} ms")
    console.print(table)
    results["wait_latency"] = wait_latency(20)
    results["scaling"] = [scaling(size) for size in args.sizes]
    table = Table(
        "tasks",
        "tasks/s",
        "dispatcher CPU/task",
        "submit/task",
        "service peak RSS",
        "store",
        "cancel all: returned / settled",
        "then get_result",
        title="scaling (wide graph)",
    )
    for row in results["scaling"]:
        table.add_row(
            f"{row['tasks']:,}",
            f"{row['tasks_per_s']:.0f}",
            f"{row['dispatcher_cpu_ms_per_task']:.2f} ms",
            f"{row['submit_us_per_task']:.0f} µs",
            f"{row['service_peak_rss_mb']:.0f} MB",
            f"{row['store_mb']:.1f} MB",
            f"{row['cancel_returned_s']:.2f} s / {row['cancel_all_settled_s']:.2f} s",
            f"{row['result_read_s']:.2f} s",
        )
    console.print(table)
    w = results["wait_latency"]
    console.print(
        f"wait latency (stored end to get_result returning): p50 {w['p50_ms']:.1f} ms, "
        f"max {w['max_ms']:.1f} ms over {w['n']}"
    )
    console.print(targets_table(results))
    console.print(f"wrote {write_results('scale.json', results)}")
    request({"op": "shutdown"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
