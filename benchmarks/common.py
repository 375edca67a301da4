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


def standalone(measure: Callable[[], dict[str, Any]]) -> None:
    """Run one plugin's benchmark in a private store and print its numbers as JSON."""
    from covalent_core.testing import isolated_store

    with isolated_store(Path(tempfile.mkdtemp(prefix="covalent-core-bench-"))):
        print(json.dumps(measure(), indent=2))
