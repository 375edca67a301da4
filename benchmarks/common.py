"""Small helpers the benchmark modules share."""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def latency_ms(samples: list[float]) -> dict[str, float]:
    """p50 and p95 of latencies in seconds, in milliseconds, with the sample count."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": 1e3 * statistics.median(samples), "p95": 1e3 * p95, "n": len(samples)}


def wait_for_handle(dispatch_id: str, timeout: float = 120.0) -> Any:
    """The job handle of node 0 once stored; fail loudly if the dispatch ended without one."""
    import time

    import covalent_core as ct

    deadline = time.monotonic() + timeout
    while True:
        result = ct.get_result(dispatch_id)
        node = result.get_node(0)
        if node.job_handle:
            return node.job_handle
        if result.is_finished or time.monotonic() > deadline:
            raise RuntimeError(f"dispatch {dispatch_id} has no job handle: {node.error}")
        time.sleep(0.005)


def credentials_file(directory: str) -> str:
    """A credentials file with the dummy keys the local AWS servers accept."""
    path = Path(directory) / "credentials"
    path.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    return str(path)


def standalone(measure: Callable[[], dict[str, Any]]) -> None:
    """Run one plugin's benchmark in a private store and print its numbers as JSON."""
    from covalent_core.testing import isolated_store

    with isolated_store(Path(tempfile.mkdtemp(prefix="covalent-core-bench-"))):
        print(json.dumps(measure(), indent=2))


def write_results(name: str, results: dict[str, Any]) -> Path:
    """Write ``results`` as ``benchmarks/results/<name>``; its path."""
    out = Path(__file__).parent / "results" / name
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return out
