"""Dispatch throughput of two commits side by side: interleaved rounds, medians, ratios.

    .venv/bin/python benchmarks/compare_commits.py OLD NEW [--rounds 3]

Each commit's ``covalent_core`` is exported (``git archive``) to a directory of its own and
run on the same interpreter and dependencies, only the built-in executors loaded, a fresh data
directory per run: a wide graph (1,000 no-ops and a reducer) and a chain of 200. The rounds
alternate between the commits, so a busy machine slows both alike. Writes
``benchmarks/results/compare.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
# The graphs and their measurement are run.py's own, run against the exported package.
PROGRAM = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from run import chain, request, throughput, wide

throughput(wide, 50, 51)  # service and workers up
print(json.dumps({
    "wide_1000": throughput(wide, 1000, 1001)["tasks_per_s"],
    "chain_200": throughput(chain, 200, 200)["tasks_per_s"],
}))
request({"op": "shutdown"})
"""


def export(commit: str, into: Path) -> Path:
    """``covalent_core`` as of ``commit``, in ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "covalent_core"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run_once(tree: Path) -> dict[str, float]:
    data = tempfile.mkdtemp(prefix="covalent-core-compare-")
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "COVALENT_CORE_PLUGINS": "local",
        "COVALENT_CORE_DATA_DIR": data,
        "COVALENT_CORE_CONFIG": os.path.join(data, "config.toml"),  # the defaults, not yours
    }
    env.pop("COVALENT_CORE_DB_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(ROOT / "benchmarks")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tree,
    )
    if out.returncode:
        raise SystemExit(f"run of {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="covalent-core-commits-"))
    trees = {
        name: export(name, scratch / f"tree{i}") for i, name in enumerate((args.old, args.new))
    }
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            samples[name].append(run_once(tree))
    table = Table("graph", *trees, "new / old", title=f"tasks/s, medians of {args.rounds}")
    summary: dict[str, dict[str, float]] = {}
    for key in ("wide_1000", "chain_200"):
        medians = {name: statistics.median(s[key] for s in samples[name]) for name in trees}
        old, new = medians[args.old], medians[args.new]
        summary[key] = {**medians, "ratio": new / old}
        table.add_row(key, f"{old:.0f}", f"{new:.0f}", f"{new / old:.2f}")
    Console().print(table)
    out = ROOT / "benchmarks" / "results" / "compare.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rounds": args.rounds, "samples": samples, "medians": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
