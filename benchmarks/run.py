"""Benchmarks of covalent-core on this machine: prints a table and writes JSON.

    .venv/bin/python benchmarks/run.py            # or scripts/bench.sh

Measures dispatch throughput (a wide graph of 1,000 no-op electrons plus a reducer, a chain of
200), the dispatcher's peak RSS and idle CPU, cancel latency (same process and from the CLI,
to the task's process being dead; a zombie counts as dead), and cancelling 10,000 nodes that
have not started; then each installed executor plugin against its real server, how long
a new service takes to re-attach to running jobs after the old one is killed, what a
500 MB return value costs the service (peak RSS) and the store, a redispatch of a
1,000-node graph in which one node changed, with reuse and without, covalent-dask against
plain Dask, and the web UI's page on graphs of 1,000 and 10,000 tasks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("COVALENT_CORE_DATA_DIR", tempfile.mkdtemp(prefix="covalent-core-bench-"))
# The defaults are measured, not the settings of whoever runs it.
os.environ.setdefault(
    "COVALENT_CORE_CONFIG", os.path.join(os.environ["COVALENT_CORE_DATA_DIR"], "config.toml")
)
os.environ.setdefault("COVALENT_CORE_IDLE_TIMEOUT", "30")

import psutil
from rich.console import Console
from rich.table import Table

import covalent_core as ct
from covalent_core.sdk.processes import is_dead
from covalent_core.service.client import request

sys.path.insert(0, str(Path(__file__).parent))
from common import latency_ms, write_results


@ct.electron
def noop(i):
    return i


@ct.electron
def reduce_all(values):
    return len(values)


@ct.electron
def sleeper(seconds):
    import time as _time

    _time.sleep(seconds)


@ct.lattice
def wide(n):
    return reduce_all([noop(i) for i in range(n)])


@ct.lattice
def chain(n):
    value = noop(0)
    for _ in range(n - 1):
        value = noop(value)
    return value


@ct.lattice
def one_sleeper():
    return sleeper(1000)


@ct.lattice
def gated(n):
    gate = sleeper(30)
    return [ct.wait(noop(i), [gate]) for i in range(n)]


def service_pid() -> int:
    return int(request({"op": "ping"})["pid"])


def throughput(lattice, n: int, tasks: int) -> dict:
    start = time.perf_counter()
    dispatch_id = ct.dispatch(lattice)(n)
    result = ct.get_result(dispatch_id, wait=True, timeout=600)
    elapsed = time.perf_counter() - start
    assert result.status is ct.Status.COMPLETED, result
    return {"tasks": tasks, "seconds": elapsed, "tasks_per_s": tasks / elapsed}


def running_sleeper() -> tuple[str, dict]:
    """Dispatch one long task and return once it runs: (dispatch id, job handle)."""
    dispatch_id = ct.dispatch(one_sleeper)()
    while not (handle := ct.get_result(dispatch_id).get_node(0).job_handle):
        time.sleep(0.01)
    time.sleep(0.05)
    return dispatch_id, handle


ONE_WORKER = ct.LocalExecutor(max_workers=1)


def _brief(seconds: float) -> float:
    import time as _time

    _time.sleep(seconds)
    return seconds


brief = ct.electron(_brief, executor=ONE_WORKER)


@ct.lattice
def packed_sleeper():
    """Three tasks that wait behind a brief one for the executor's only worker, and so run
    as one pack; the middle one sleeps (a pack forms when a slot frees while several wait)."""
    return [brief(0.3), brief(0.0), brief(1000.0), brief(0.0)]


def running_packed_sleeper() -> tuple[str, int, dict]:
    """Dispatch :func:`packed_sleeper` and return once its sleeper runs in its pack:
    (dispatch id, the sleeper's node id, its job handle)."""
    dispatch_id = ct.dispatch(packed_sleeper)()
    while True:
        nodes = [n for n in ct.get_result(dispatch_id).tasks if n.name == "_brief"]
        sleeper = nodes[2]
        done_before = nodes[1].status is ct.Status.COMPLETED
        if sleeper.job_handle and done_before and sleeper.status is ct.Status.RUNNING:
            time.sleep(0.05)
            return dispatch_id, sleeper.node_id, sleeper.job_handle
        time.sleep(0.01)


def cancel_latency_packed(runs: int) -> list[float]:
    """``ct.cancel`` of a task that runs in a pack (its process ran the one before it) to
    that process gone, timed as :func:`cancel_latency_same_process`."""
    samples = []
    for _ in range(runs):
        dispatch_id, node_id, handle = running_packed_sleeper()
        assert handle.get("pack"), handle
        died: list[float] = []
        watcher = threading.Thread(target=_note_death, args=(handle["pid"], died), daemon=True)
        watcher.start()
        start = time.perf_counter()
        ct.cancel(dispatch_id, task_ids=[node_id])
        watcher.join(60)
        samples.append(died[0] - start)
        ct.get_result(dispatch_id, wait=True, timeout=60)
    return samples


def _note_death(pid: int, died: list[float]) -> None:
    while not is_dead(pid):
        time.sleep(0.0002)
    died.append(time.perf_counter())


def cancel_latency_same_process(runs: int, task_ids: list[int] | None = None) -> list[float]:
    """``ct.cancel`` (of the whole dispatch, or of ``task_ids``) to the task's process gone,
    watched from another thread from the moment of the call (``ct.cancel`` returns once the
    request is stored, which may be later; Ray's ``ray.cancel`` returns at once and is timed
    the same way)."""
    samples = []
    for _ in range(runs):
        dispatch_id, handle = running_sleeper()
        died: list[float] = []
        watcher = threading.Thread(target=_note_death, args=(handle["pid"], died), daemon=True)
        watcher.start()
        start = time.perf_counter()
        ct.cancel(dispatch_id, task_ids=task_ids)
        watcher.join(60)
        samples.append(died[0] - start)
        ct.get_result(dispatch_id, wait=True, timeout=60)
    return samples


def cancel_latency_cli(runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        dispatch_id, handle = running_sleeper()
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "covalent_core", "cancel", dispatch_id],
            stdout=subprocess.DEVNULL,
        )
        while not is_dead(handle["pid"]):
            time.sleep(0.0005)
        samples.append(time.perf_counter() - start)
        proc.wait()
        ct.get_result(dispatch_id, wait=True, timeout=60)
    return samples


def cancel_many_not_started(n: int) -> dict:
    dispatch_id = ct.dispatch(gated)(n)
    while ct.get_result(dispatch_id).get_node(0).status is not ct.Status.RUNNING:
        time.sleep(0.02)
    start = time.perf_counter()
    ct.cancel(dispatch_id)
    returned = time.perf_counter() - start
    result = ct.get_result(dispatch_id, wait=True, timeout=600)
    started = sum(1 for node in result.tasks if node.started_at is not None and node.node_id != 0)
    return {"nodes": n, "cancel_returned_s": returned, "nodes_started_after": started}


def idle_cpu_percent(pid: int, seconds: float = 5.0) -> float:
    proc = psutil.Process(pid)
    before = sum(proc.cpu_times()[:2])
    time.sleep(seconds)
    return 100 * (sum(proc.cpu_times()[:2]) - before) / seconds


# Each further benchmark (each executor plugin's, then re-attaching after the service is
# killed): its key in the JSON, module, package, and the server (or program) it needs on this
# machine. Each module has measure() and rows(result).
PLUGINS = [
    ("ssh", "ssh_bench", "covalent_ssh", "/usr/sbin/sshd"),
    ("slurm", "slurm_bench", "covalent_slurm", "/usr/sbin/slurmctld"),
    ("awsbatch", "awsbatch_bench", "covalent_awsbatch", sys.executable),
    ("braket", "braket_bench", "covalent_braket", sys.executable),
    ("reattach", "reattach_bench", "covalent_core", sys.executable),
    ("big_value", "big_value_bench", "covalent_core", sys.executable),
    ("redispatch", "redispatch_bench", "covalent_core", sys.executable),
    ("dask", "dask_bench", "covalent_dask", sys.executable),
    ("ui", "ui_bench", "playwright", "/usr/bin/chromium"),
]
# Plugins tested in a venv of their own (scripts/setup.sh): their benchmark runs there.
OWN_VENV = {"covalent_dask": Path(__file__).resolve().parents[1] / ".venv-covalent-dask"}


def event_log_cost(nodes: int = 20_000) -> dict:
    """CPU the service's log costs per node: its two events (started, ended), written
    through the service's own handler to a file in a private directory."""
    import logging

    from covalent_core.service.events import event, log_handler

    logger = logging.getLogger("covalent_core.events")
    handler = log_handler(Path(tempfile.mkdtemp(prefix="covalent-core-bench-log-")))
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    dispatch = "83f84094-8663-41c7-b66a-0123456789ab"
    start = time.process_time()
    for i in range(nodes):
        event("node_started", dispatch=dispatch, node=i, name="noop", executor="local")
        event("node_ended", dispatch=dispatch, node=i, name="noop", status="COMPLETED",
              stage="cleanup")  # fmt: skip
    per_node = (time.process_time() - start) / nodes
    logger.removeHandler(handler)
    logger.level = level
    handler.close()
    return {"us_per_node": per_node * 1e6, "s_per_100k_nodes": per_node * 100_000}


def _module(name: str) -> Any:
    import importlib

    sys.path.insert(0, str(Path(__file__).parent))
    return importlib.import_module(name)


def plugin_benchmark(module: str, package: str, server: str) -> dict:
    """Run an executor plugin's benchmark module, or say why it was skipped."""
    import importlib.util

    venv = OWN_VENV.get(package)
    if venv is not None and importlib.util.find_spec(package) is None:
        python = venv / "bin" / "python"
        if not python.exists():
            return {"skipped": f"{venv} is missing (scripts/setup.sh makes it)"}
        done = subprocess.run(
            [str(python), str(Path(__file__).with_name(f"{module}.py"))],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            return {"skipped": f"{module} failed: {done.stderr.strip()[-500:]}"}
        return json.loads(done.stdout)
    if importlib.util.find_spec(package) is None:
        return {"skipped": f"{package} is not installed"}
    if not os.path.exists(server):
        return {"skipped": f"{server} is missing (covalent-servers-install installs it)"}
    return _module(module).measure()


def main() -> int:
    # Imported here: compare_commits.py imports this module against older packages.
    from covalent_core.testing import peak_rss_mb

    console = Console(width=None if sys.stdout.isatty() else 120)
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    throughput(wide, 50, 51)  # warm up: service, workers
    pid = service_pid()
    results["wide_1000"] = throughput(wide, 1000, 1001)
    results["chain_200"] = throughput(chain, 200, 200)
    results["dispatcher_peak_rss_mb"] = peak_rss_mb(pid)
    results["dispatcher_idle_cpu_percent"] = idle_cpu_percent(pid)
    same = cancel_latency_same_process(20)
    cli = cancel_latency_cli(10)
    results["cancel_same_process_ms"] = latency_ms(same)
    results["cancel_cli_ms"] = latency_ms(cli)
    results["cancel_10000_not_started"] = cancel_many_not_started(10_000)
    results["event_log"] = event_log_cost()
    for key, module, package, server in PLUGINS:
        results[key] = plugin_benchmark(module, package, server)

    table = Table("benchmark", "result", "target", title="covalent-core benchmarks")
    w, c = results["wide_1000"], results["chain_200"]
    table.add_row(
        "wide graph, 1,000 no-ops + reducer",
        f"{w['tasks_per_s']:.0f} tasks/s ({w['seconds']:.2f} s)",
        ">= 300 tasks/s",
    )
    table.add_row("chain of 200", f"{c['tasks_per_s']:.0f} tasks/s ({c['seconds']:.2f} s)", "")
    table.add_row("dispatcher peak RSS", f"{results['dispatcher_peak_rss_mb']:.0f} MB", "")
    table.add_row(
        "dispatcher idle CPU", f"{results['dispatcher_idle_cpu_percent']:.2f} %", "next to none"
    )
    s, k = results["cancel_same_process_ms"], results["cancel_cli_ms"]
    table.add_row(
        "cancel -> process dead, same process",
        f"p50 {s['p50']:.1f} ms, p95 {s['p95']:.1f} ms",
        "p50 <= 50, p95 <= 200 ms",
    )
    table.add_row(
        "cancel -> process dead, CLI",
        f"p50 {k['p50']:.0f} ms, p95 {k['p95']:.0f} ms",
        "p50 <= 300 ms",
    )
    m = results["cancel_10000_not_started"]
    table.add_row(
        "cancel 10,000 not-started nodes",
        f"returned in {m['cancel_returned_s']:.2f} s, {m['nodes_started_after']} started",
        "<= 1 s, 0 started",
    )
    e = results["event_log"]
    table.add_row(
        "service log, 2 events per node",
        f"{e['us_per_node']:.0f} µs CPU per node ({e['s_per_100k_nodes']:.1f} s per 100k)",
        "",
    )
    for key, module, _package, _server in PLUGINS:
        if "skipped" in results[key]:
            table.add_row(key, f"skipped: {results[key]['skipped']}", "")
        else:
            for row in _module(module).rows(results[key]):
                table.add_row(*row)
    console.print(table)
    console.print(f"wrote {write_results('latest.json', results)}")
    request({"op": "shutdown"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
