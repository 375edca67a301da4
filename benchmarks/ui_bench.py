"""The web UI on big graphs, in Debian's headless Chromium driven by Playwright.

For a finished wide graph of 1,000 and of 10,000 tasks (plus a reducer), and a chain of
1,000 (nothing to collapse: every node is drawn): how long the
dispatch page takes from navigation to the graph drawn, how many elements it draws (repeated
siblings collapse into one), the size of the graph's JSON and of one live update, and how
long finding a node by id takes (search box to its details shown).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import covalent_core as ct

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import standalone

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@ct.electron
def noop(i: int) -> int:
    return i


@ct.electron
def count(values: list[int]) -> int:
    return len(values)


@ct.lattice
def wide(n: int) -> int:
    return count([noop(i) for i in range(n)])


@ct.lattice
def chain(n: int) -> int:
    value = 0
    for _ in range(n):
        value = noop(value)
    return value


def _page_numbers(page: Any, root: str, dispatch_id: str, find: int) -> dict[str, Any]:
    start = time.perf_counter()
    page.goto(f"{root}/dispatches/{dispatch_id}")
    page.wait_for_function(
        "() => typeof state !== 'undefined' && state.cy !== null", timeout=600_000
    )
    drawn = time.perf_counter() - start
    elements = page.evaluate("() => state.cy.elements().length")
    start = time.perf_counter()
    page.fill("#search", str(find))
    page.press("#search", "Enter")
    page.wait_for_function(
        f"() => document.querySelector('#panel h2')?.textContent.startsWith('{find}:')"
    )
    found = time.perf_counter() - start
    return {"drawn_s": drawn, "elements": elements, "find_s": found}


SHAPES = (("wide", wide, 1000), ("wide", wide, 10_000), ("chain", chain, 1000))
"""Wide graphs collapse (their tasks are siblings); a chain cannot: every node is drawn."""


def measure(shapes: tuple[tuple[str, Any, int], ...] = SHAPES) -> dict[str, Any]:
    """Dispatch each shape, then time its page; returns JSON-ready numbers."""
    import httpx
    from playwright.sync_api import sync_playwright

    proc = subprocess.Popen(
        [sys.executable, "-m", "covalent_core", "ui", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = re.search(r"http://\S+", proc.stdout.readline())
        assert url is not None
        root, token = url.group(0).split("/?token=")
        results: dict[str, Any] = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 800})
            page.goto(url.group(0))
            for shape, lattice, n in shapes:
                dispatch_id = ct.dispatch(lattice)(n)
                ct.get_result(dispatch_id, wait=True, timeout=3600)
                graph = httpx.get(
                    f"{root}/api/dispatches/{dispatch_id}",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=120,
                )
                numbers = _page_numbers(page, root, dispatch_id, find=n // 2)
                numbers["graph_json_kb"] = len(graph.content) / 1024
                numbers["nodes"] = len(graph.json()["nodes"])
                results[f"{shape} {n}"] = numbers
            browser.close()
        return results
    finally:
        proc.terminate()
        proc.wait(30)


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Table rows: (benchmark, result, target)."""
    out = []
    for key, r in result.items():
        shape, n = key.split()
        out.append(
            (
                f"ui: {shape} graph of {int(n):,} tasks",
                f"page drawn in {r['drawn_s']:.2f} s ({r['nodes']:,} nodes as {r['elements']} "
                f"elements, graph JSON {r['graph_json_kb']:.0f} KB); node found in "
                f"{r['find_s']:.2f} s",
                "readable at 1,000, usable at 10,000",
            )
        )
    return out


if __name__ == "__main__":
    standalone(measure)
