"""Differential test against real Covalent 0.240: same programs, same graphs, same values.

Installs ``covalent==0.240.0`` in its own venv (with the pins in
``covalent-0.240-constraints.txt``, which make it install and run today), builds every
program with both tools, dispatches a sample on both (Covalent's own server, started here on
loopback in a scratch home, stopped at the end) and compares. Prints a table; exits 1 when
fewer than ``--min-agreement`` of the programs build the same graph or any value differs.

    python tests/compat/reference.py                  # a new random seed, 200 programs
    python tests/compat/reference.py --seed 7 --run 20
    python tests/compat/reference.py --write-golden   # refresh tests/compat/golden/
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from programs import CONSTRUCTS, PRELUDE, Program, random_programs  # noqa: E402

CONSTRAINTS = HERE / "covalent-0.240-constraints.txt"
GOLDEN = HERE / "golden"
GOLDEN_SEED = 2026
GOLDEN_COUNT = 200
GOLDEN_RUN = 15


def ensure_venv(venv: Path) -> Path:
    """Covalent 0.240 in its own venv (it pins SQLAlchemy 1.4: never in ours)."""
    python = venv / "bin" / "python"
    probe = [
        str(python),
        "-c",
        "import covalent, importlib.metadata as m; print(m.version('covalent'))",
    ]
    if (
        python.exists()
        and subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "0.240.0"
    ):
        return python
    print(f"installing covalent 0.240.0 into {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "covalent==0.240.0", "-c", str(CONSTRAINTS)],
        check=True,
    )
    return python


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CovalentServer:
    """``covalent start`` in a scratch home on a free loopback port; stopped on exit."""

    def __init__(self, python: Path, home: Path, *, triggers: bool = False) -> None:
        self.triggers = triggers
        self.cli = str(python.parent / "covalent")
        self.env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CACHE_HOME": str(home / ".cache"),
        }
        self.port = _free_port()

    def __enter__(self) -> CovalentServer:
        # No Dask cluster (its dashboard would bind every interface): tasks run locally.
        start = [self.cli, "start", "--no-cluster", "-p", str(self.port)]
        if not self.triggers:
            start.append("--no-triggers")
        subprocess.run(start, env=self.env, check=True, capture_output=True, timeout=120)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run([self.cli, "stop"], env=self.env, capture_output=True, timeout=120)


def dump(python: Path, programs: list[Program], run: list[str], env: dict[str, str]) -> list[dict]:
    """Run graphdump.py under ``python`` (Covalent's or ours) and return its records."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump([{"name": p.name, "source": p.source()} for p in programs], fh)
    flavour = "covalent_core" if Path(python) == Path(sys.executable) else "covalent"
    try:
        proc = subprocess.run(
            [str(python), str(HERE / "graphdump.py"), flavour, fh.name, "--run", *run],
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
        )
    finally:
        os.unlink(fh.name)
    if proc.returncode != 0:
        raise SystemExit(f"graphdump under {flavour} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


def same_build(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Same graph, or both refused with the same kind of error."""
    if "graph" in theirs or "graph" in ours:
        return ours.get("graph") == theirs.get("graph")
    return ours.get("error") == theirs.get("error")


def classify(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    """What kind of difference a pair of builds shows."""
    if same_build(ours, theirs):
        return "same"
    if "graph" not in ours or "graph" not in theirs:
        return "one side refused to build"
    a, b = ours["graph"], theirs["graph"]
    if a["nodes"] != b["nodes"]:
        return "node ids or names differ"
    edges_a = {tuple(e[:2]) for e in a["edges"]}
    edges_b = {tuple(e[:2]) for e in b["edges"]}
    if edges_a != edges_b:
        return "a dependency is missing or extra"
    return "edge names or argument positions differ"


def same_value(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Both dispatches ended alike with the same result."""
    return (ours.get("status"), ours.get("result")) == (theirs.get("status"), theirs.get("result"))


def write_golden(python: Path) -> None:
    """Refresh the golden files from real Covalent (constructs, and a fixed random set)."""
    sets = {
        "constructs": (CONSTRUCTS, [p.name for p in CONSTRUCTS if "refused" not in p.name]),
        "random": (
            random_programs(GOLDEN_SEED, GOLDEN_COUNT),
            [f"random_{GOLDEN_SEED}_{i}" for i in range(GOLDEN_RUN)],
        ),
    }
    with tempfile.TemporaryDirectory() as home, CovalentServer(python, Path(home)) as server:
        for label, (programs, run) in sets.items():
            theirs = dump(python, programs, run, server.env)
            GOLDEN.mkdir(exist_ok=True)
            document = {
                "covalent": "0.240.0",
                "seed": GOLDEN_SEED if label == "random" else None,
                "prelude": PRELUDE,
                "programs": [
                    {**p.to_json(), "covalent": t} for p, t in zip(programs, theirs, strict=True)
                ],
            }
            path = GOLDEN / f"{label}.json"
            path.write_text(_one_program_per_line(document))
            print(f"wrote {path} ({len(programs)} programs, {len(run)} with values)")


def _one_program_per_line(document: dict[str, Any]) -> str:
    head = {k: v for k, v in document.items() if k != "programs"}
    lines = ",\n".join(json.dumps(p, separators=(",", ":")) for p in document["programs"])
    return json.dumps(head)[:-1] + ', "programs": [\n' + lines + "\n]}\n"


def compare(python: Path, seed: int, count: int, run_count: int, minimum: float) -> int:
    """Build ``count`` random programs and the constructs with both; dispatch a sample."""
    programs = CONSTRUCTS + random_programs(seed, count)
    rng = random.Random(seed)
    run = rng.sample([p.name for p in programs[len(CONSTRUCTS) :]], min(run_count, count))
    with tempfile.TemporaryDirectory() as scratch:
        ours_env = {**os.environ, "COVALENT_CORE_DATA_DIR": str(Path(scratch) / "data")}
        start = time.monotonic()
        ours = dump(Path(sys.executable), programs, run, ours_env)
        (Path(scratch) / "home").mkdir()
        with CovalentServer(python, Path(scratch) / "home") as server:
            theirs = dump(python, programs, run, server.env)
        elapsed = time.monotonic() - start
    kinds = Counter()
    random_same = 0
    failures = []
    for p, a, b in zip(programs, ours, theirs, strict=True):
        kind = classify(a, b)
        kinds[kind] += 1
        if kind == "same" and p.name.startswith("random_"):
            random_same += 1
        if kind != "same":
            failures.append((p, kind, a, b))
    value_diffs = [
        (p, a, b)
        for p, a, b in zip(programs, ours, theirs, strict=True)
        if p.name in run and not same_value(a, b)
    ]
    agreement = random_same / count if count else 1.0
    print(
        f"covalent-core vs Covalent 0.240.0: seed {seed}, {count} random programs "
        f"+ {len(CONSTRUCTS)} constructs, {elapsed:.0f} s"
    )
    print(f"{'outcome':<45}{'programs':>10}")
    for kind, n in kinds.most_common():
        print(f"{kind:<45}{n:>10}")
    print(f"{'random programs with the same graph':<45}{agreement:>10.1%}")
    print(f"{'dispatched on both, same result':<45}{len(run) - len(value_diffs):>6} / {len(run)}")
    for p, kind, a, b in failures[:10]:
        print(f"\n--- {p.name}: {kind}\n{p.body}")
        print(f"ours:   {json.dumps(a)[:600]}\ntheirs: {json.dumps(b)[:600]}")
    for p, a, b in value_diffs[:10]:
        print(f"\n--- {p.name}: values differ\n{p.body}")
        print(f"ours:   {a.get('status')} {a.get('result')}")
        print(f"theirs: {b.get('status')} {b.get('result')}")
    construct_failures = [p.name for p, *_ in failures if not p.name.startswith("random_")]
    ok = agreement >= minimum and not value_diffs and not construct_failures
    print("\nPASS" if ok else "\nFAIL")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv-covalent")
    parser.add_argument("--seed", type=int, default=None, help="default: a new one each run")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--run", type=int, default=10, help="random programs to dispatch")
    parser.add_argument("--min-agreement", type=float, default=0.99)
    parser.add_argument("--write-golden", action="store_true")
    args = parser.parse_args(argv)
    python = ensure_venv(args.venv)
    if args.write_golden:
        write_golden(python)
        return 0
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**9)
    return compare(python, seed, args.count, args.run, args.min_agreement)


if __name__ == "__main__":
    sys.exit(main())
