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


def measure(rounds: int = 3, size: int = 1000) -> dict[str, Any]:
    """Medians of both redispatches, interleaved; JSON-ready numbers."""
    first = ct.dispatch(graph)(size)
    assert ct.get_result(first, wait=True, timeout=3600).status is ct.Status.COMPLETED
    samples: dict[str, list[dict[str, Any]]] = {"with reuse": [], "without reuse": []}
    for _ in range(rounds):
        samples["with reuse"].append(one(first, True))
        samples["without reuse"].append(one(first, False))
    rows = {
        name: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
        for name, runs in samples.items()
    }
    return {"size": size, "rows": rows}


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Table rows: (benchmark, result, target)."""
    out = []
    for name, row in result["rows"].items():
        out.append(
            (
                f"redispatch {name}, 1 of {result['size'] + 2} tasks changed",
                f"changed node starts after {row['to_changed_start_s']:.3f} s, result after "
                f"{row['to_result_s']:.3f} s; {row['tasks_run']:.0f} tasks run",
                "2 tasks run (the changed one, its reducer)" if name == "with reuse" else "",
            )
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args()
    result = measure(args.rounds, args.size)
    table = Table("benchmark", "result", "target", title="redispatch with reuse")
    for row in rows(result):
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 140).print(table)
    print(f"wrote {write_results('redispatch.json', result)}")
    request({"op": "shutdown"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
