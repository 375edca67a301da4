"""PostgreSQL: the wide graph on a PostgreSQL store beside SQLite, and cross-host cancel latency.

    .venv/bin/python benchmarks/shared_store_bench.py [--rounds 5] [--cancels 20]

Starts a throwaway PostgreSQL cluster on 127.0.0.1 (Debian's server binaries, as the tests do;
run as root). Wide graph of 1,000 no-ops: dispatch to ``get_result(wait=True)`` returning, warm
service, SQLite and PostgreSQL rounds interleaved, medians. Cross-host cancel: two "hosts" (data
directories, each with its own service) share the PostgreSQL store; host A runs a task, host
B's ``ct.cancel`` returns, and the time to the task's process being gone is measured (B's call
included), beside the same cancel issued on host A. Writes ``results/shared_store.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import covalent_core as ct
from covalent_core.sdk.processes import is_dead
from covalent_core.service.client import request
from covalent_core.testing import as_host, dispatch_task, isolated_store, wait_until

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import latency_ms, write_results  # noqa: E402
from run import wide  # noqa: E402


def sleeper(path: str) -> None:
    """A task that says its PID, then sleeps until it is killed."""
    import os as _os
    import time as _time

    with open(path, "w") as fh:
        fh.write(str(_os.getpid()))
    _time.sleep(600)


def wide_seconds() -> float:
    start = time.perf_counter()
    result = ct.get_result(ct.dispatch(wide)(1000), wait=True, timeout=600)
    assert result.status is ct.Status.COMPLETED, result
    return time.perf_counter() - start


def wide_rounds(root: Path, pg_url: str, rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    for store, url in (("sqlite", None), ("postgresql", pg_url)):
        with isolated_store(root / store, (), 120, db_url=url):
            ct.get_result(ct.dispatch(wide)(50), wait=True, timeout=120)  # warm
    for _ in range(rounds):
        for store, url in (("sqlite", None), ("postgresql", pg_url)):
            with isolated_store(root / store, (), 120, db_url=url):
                samples[store].append(wide_seconds())
    for store, url in (("sqlite", None), ("postgresql", pg_url)):
        with isolated_store(root / store, (), 120, db_url=url):
            pass  # stops that store's service
    return {store: statistics.median(values) for store, values in samples.items()}


def cancel_latency(root: Path, pg_url: str, runs: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = {"same host": [], "other host": []}
    with isolated_store(root / "host-a", (), 120, db_url=pg_url):
        with as_host(root / "host-b"):
            request({"op": "ping"})  # host B's service runs too
        for i in range(runs):
            for where in ("same host", "other host"):
                pid_file = root / f"pid-{i}-{where.replace(' ', '-')}"
                dispatch_id = dispatch_task(sleeper, "local", str(pid_file))
                wait_until(lambda f=pid_file: f.exists() and f.read_text(), 60, "task started")
                pid = int(pid_file.read_text())
                host = root / ("host-a" if where == "same host" else "host-b")
                with as_host(host):
                    start = time.perf_counter()
                    ct.cancel(dispatch_id)
                    while not is_dead(pid):
                        time.sleep(0.0002)
                    samples[where].append(time.perf_counter() - start)
                ct.get_result(dispatch_id, wait=True, timeout=60)
        with as_host(root / "host-b"):
            request({"op": "shutdown"})
    return {
        where: {**latency_ms(values), "max": 1e3 * max(values)} for where, values in samples.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cancels", type=int, default=20)
    args = parser.parse_args()
    from pytest_covalent_servers.postgres import PostgresServer

    console = Console(width=None if sys.stdout.isatty() else 130)
    root = Path(tempfile.mkdtemp(prefix="covalent-core-pg-bench-"))
    server = PostgresServer.start()
    try:
        url = server.create_database("bench")
        results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
        results["wide_1000"] = wide_rounds(root, url, args.rounds)
        hosts_url = server.create_database("hosts")
        results["cancel_latency"] = cancel_latency(root, hosts_url, args.cancels)
    finally:
        server.stop()
    w = results["wide_1000"]
    table = Table("store", "wide 1,000 (s)", "tasks/s", title="wide graph, warm, medians")
    for store, seconds in w.items():
        table.add_row(store, f"{seconds:.2f}", f"{1001 / seconds:.0f}")
    console.print(table)
    title = "cancel to the task's process gone"
    table = Table("cancel issued on", "p50", "p95", "max", title=title)
    for where, row in results["cancel_latency"].items():
        table.add_row(where, f"{row['p50']:.1f} ms", f"{row['p95']:.1f} ms", f"{row['max']:.1f} ms")
    console.print(table)
    console.print(f"wrote {write_results('shared_store.json', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
