"""Big values never pass whole through the service or the store: a local task writes a big
output to a file once, its dependents read it there, the client reads it when asked."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import covalent_core as ct
from covalent_core.sdk.runner import BIG_VALUE
from covalent_core.service.client import request
from covalent_core.testing import isolated_store, peak_rss_mb

SIZE = 200 * 1024 * 1024


@ct.electron
def big(size):
    return b"x" * size


@ct.electron
def length(value):
    return len(value)


@ct.electron
def same(value):
    return value


@ct.lattice
def flow(size):
    value = big(size)
    length(value)
    return same(value)


@ct.lattice
def small_flow():
    return length(big(10))


def test_a_big_output_is_stored_once_as_a_file_and_not_held_by_the_service(tmp_path: Path):
    data = tmp_path / "data"
    with isolated_store(data, (), 60):
        assert ct.dispatch_sync(small_flow, timeout=60)().result == 10  # service and workers up
        pid = int(request({"op": "ping"})["pid"])
        before = peak_rss_mb(pid)
        result = ct.dispatch_sync(flow, timeout=300)(SIZE)
        assert result.status is ct.Status.COMPLETED, result.error
        grew = peak_rss_mb(pid) - before
        assert grew < 100, f"the service's peak RSS grew by {grew:.0f} MB"
        # Stored once: the producer's file (the task that returned the very same value, and
        # the lattice that returns that, refer to it).
        files = sorted((data / "values" / result.dispatch_id).iterdir())
        sizes = [f.stat().st_size for f in files]
        assert len(files) == 1 and sizes[0] > SIZE, files
        assert all(f.stat().st_mode & 0o077 == 0 for f in files)
        for directory in (data / "values", data / "values" / result.dispatch_id):
            assert directory.stat().st_mode & 0o077 == 0, directory
        database = sum(p.stat().st_size for p in data.glob("covalent.db*"))
        assert database < 20 * BIG_VALUE, f"the store holds {database} bytes"
        # The client reads it when asked.
        assert len(result.result) == SIZE
        outputs = {n.name: n.output for n in result.tasks}
        assert outputs["length"] == SIZE and len(outputs["big"]) == SIZE


def test_a_big_input_is_a_file_too(tmp_path: Path):
    data = tmp_path / "data"
    with isolated_store(data, (), 60):

        @ct.lattice
        def measure(value):
            return length(value)

        result = ct.dispatch_sync(measure, timeout=300)(b"y" * (5 * BIG_VALUE))
        assert result.result == 5 * BIG_VALUE
        conn = sqlite3.connect(data / "covalent.db")
        try:
            biggest = conn.execute("SELECT max(length(output)) FROM nodes").fetchone()[0]
            inputs = conn.execute("SELECT max(length(inputs)) FROM dispatches").fetchone()[0]
        finally:
            conn.close()
        assert biggest < BIG_VALUE and inputs < BIG_VALUE
        # Read when asked for, as Covalent's result.inputs.
        assert len(result.inputs.get_deserialized()["args"][0]) == 5 * BIG_VALUE


@ct.electron
def chatty(size):
    import sys

    line = "z" * 1023 + "\n"
    for _ in range(size // 1024):
        sys.stdout.write(line)
    return "done"


def test_a_big_stdout_is_kept_as_a_file_and_read_when_asked(tmp_path: Path):
    data = tmp_path / "data"
    with isolated_store(data, (), 60):

        @ct.lattice
        def talk(size):
            return chatty(size)

        assert ct.dispatch_sync(small_flow, timeout=60)().result == 10
        pid = int(request({"op": "ping"})["pid"])
        before = peak_rss_mb(pid)
        result = ct.dispatch_sync(talk, timeout=300)(SIZE)
        assert result.result == "done"
        grew = peak_rss_mb(pid) - before
        assert grew < 100, f"the service's peak RSS grew by {grew:.0f} MB"
        node = result.get_node(0)
        assert len(node.stdout) == SIZE // 1024 * 1024
        assert node.stdout.startswith("z" * 1023 + "\n")
        database = sum(p.stat().st_size for p in data.glob("covalent.db*"))
        assert database < 20 * BIG_VALUE, f"the store holds {database} bytes"
