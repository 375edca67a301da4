"""A 500 MB return value through the dispatcher: its service's peak RSS, and what is stored.

One task returns 500 MB, a second takes it as its argument and returns its length, and the
lattice returns the big value itself. Measured on a service of its own (``VmHWM`` before and
after), with the store's size and the value files (stored once: one file).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import covalent_core as ct
from covalent_core import config
from covalent_core.service.client import request
from covalent_core.testing import peak_rss_mb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import standalone

SIZE = 500 * 1024 * 1024


def _big(size: int) -> bytes:
    return b"v" * size


def _length(value: bytes) -> int:
    return len(value)


def measure() -> dict[str, Any]:
    """JSON-ready numbers."""
    big, length = ct.electron(_big), ct.electron(_length)

    @ct.lattice
    def flow(size: int) -> bytes:
        value = big(size)
        length(value)
        return value

    @ct.lattice
    def warm() -> int:
        return length(big(10))

    ct.dispatch_sync(warm, timeout=120)()
    pid = int(request({"op": "ping"})["pid"])
    before = peak_rss_mb(pid)
    result = ct.dispatch_sync(flow, timeout=900)(SIZE)
    after = peak_rss_mb(pid)
    assert result.status is ct.Status.COMPLETED, result.error
    data = config.data_dir()
    files = list((data / "values" / result.dispatch_id).iterdir())
    store = sum(p.stat().st_size for p in data.glob("covalent.db*"))
    return {
        "value_mb": SIZE / 2**20,
        "service_peak_rss_before_mb": before,
        "service_peak_rss_after_mb": after,
        "service_peak_rss_growth_mb": after - before,
        "value_files": len(files),
        "value_files_mb": sum(f.stat().st_size for f in files) / 2**20,
        "store_mb": store / 2**20,
    }


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Table rows: (benchmark, result, target)."""
    return [
        (
            f"{result['value_mb']:.0f} MB return value: service peak RSS",
            f"+{result['service_peak_rss_growth_mb']:.1f} MB "
            f"({result['service_peak_rss_before_mb']:.0f} -> "
            f"{result['service_peak_rss_after_mb']:.0f} MB)",
            "< +50 MB",
        ),
        (
            f"{result['value_mb']:.0f} MB return value: stored",
            f"{result['value_files']} file(s), {result['value_files_mb']:.0f} MB; "
            f"store {result['store_mb']:.2f} MB",
            "once",
        ),
    ]


if __name__ == "__main__":
    standalone(measure)
