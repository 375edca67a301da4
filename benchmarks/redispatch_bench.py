"""Redispatch with reuse: a 1,000-node graph in which one node changed.

    .venv/bin/python benchmarks/redispatch_bench.py [--rounds 3] [--size 1000]

A wide graph of ``size`` no-op tasks, one ``special`` task and a reducer that takes them all
runs once; then it is redispatched with ``special`` replaced, with reuse and (interleaved)
without. Measured: from calling the redispatch to the changed node starting (its stored
start), to the redispatch's result returning, and how many tasks ran (with reuse: the changed
node and the reducer downstream of it). Medians over the rounds; writes
``results/redispatch.json``.
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

os.environ.setdefault("COVALENT_CORE_DATA_DIR", tempfile.mkdtemp(prefix="covalent-core-redisp-"))
os.environ.setdefault(
    "COVALENT_CORE_CONFIG", os.path.join(os.environ["COVALENT_CORE_DATA_DIR"], "config.toml")
)

from rich.console import Console
from rich.table import Table

import covalent_core as ct
from covalent_core.service.client import request

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import write_results  # noqa: E402


@ct.electron
def noop(i):
    return i


@ct.electron
def special(x):
    return x


@ct.electron
def special_fixed(x):
    return x + 1


@ct.electron
def reduce_all(values, extra):
    return len(values) + extra


@ct.lattice
def graph(n):
    return reduce_all([noop(i) for i in range(n)], special(n))


def one(first: str, reuse: bool) -> dict[str, Any]:
    start_wall, start = time.time(), time.perf_counter()
    new_id = ct.redispatch(
        first, replace_electrons={"special": special_fixed}, reuse_previous_results=reuse
    )()
    result = ct.get_result(new_id, wait=True, timeout=3600)
    elapsed = time.perf_counter() - start
    assert result.status is ct.Status.COMPLETED, result.error
    changed = next(n for n in result.tasks if n.name == "special_fixed")
    ran = [n for n in result.tasks if not n.reused and n.kind == "electron"]
    return {
        "to_changed_start_s": changed.started_at - start_wall,
        "to_result_s": elapsed,
        "tasks_run": len(ran),
        "tasks": len(result.tasks),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args()
    first = ct.dispatch(graph)(args.size)
    assert ct.get_result(first, wait=True, timeout=3600).status is ct.Status.COMPLETED
    samples: dict[str, list[dict[str, Any]]] = {"with reuse": [], "without reuse": []}
    for _ in range(args.rounds):
        samples["with reuse"].append(one(first, True))
        samples["without reuse"].append(one(first, False))
    rows = {
        name: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
        for name, runs in samples.items()
    }
    table = Table(
        "redispatch",
        "to the changed node's start",
        "to the result",
        "tasks run",
        title=f"one node changed in a graph of {args.size + 2} tasks",
    )
    for name, row in rows.items():
        table.add_row(
            name,
            f"{row['to_changed_start_s']:.3f} s",
            f"{row['to_result_s']:.3f} s",
            f"{row['tasks_run']:.0f} of {row['tasks']:.0f}",
        )
    Console(width=None if sys.stdout.isatty() else 120).print(table)
    print(f"wrote {write_results('redispatch.json', {'size': args.size, 'rows': rows})}")
    request({"op": "shutdown"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
