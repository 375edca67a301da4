"""A full disk: nothing is lost, no dispatch stays RUNNING, the error says what happened.

The data directory lives on a small tmpfs mounted by the test (as root), filled up with a
file the test controls; freeing it is "once space allows".
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import covalent_core as ct
from covalent_core.errors import StoreFullError
from covalent_core.service.client import request
from covalent_core.testing import isolated_store, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir(mode=0o700)
    options = "size=16m,mode=0700"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte; the file to remove to free it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 16, 1):
            try:
                while os.write(fd, b"\0" * chunk):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


@ct.electron
def quick(x):
    return x + 1


@ct.electron
def padded(flag_file, size):
    import os as _os
    import time as _time

    while not _os.path.exists(flag_file):  # the test fills the disk meanwhile
        _time.sleep(0.02)
    return "p" * size


@ct.lattice
def flow(flag_file):
    first = quick(1)
    return [first, padded(flag_file, 400_000), quick(first)]


def test_dispatch_on_a_full_disk_says_so_and_stores_nothing(small_disk: Path):
    data = small_disk / "data"
    with isolated_store(data, (), 30):
        assert ct.dispatch_sync(quick_flow, timeout=60)().result == 2
        ct.covalent_stop(quiet=True)
        filler = fill(small_disk)
        with pytest.raises(StoreFullError, match="could not be written: database or disk is full"):
            ct.dispatch(quick_flow)()
        filler.unlink()
        assert integrity(data / "covalent.db") == "ok"
        assert [r.status for r in ct.list_dispatches(10)] == [ct.Status.COMPLETED]


@ct.lattice
def quick_flow():
    return quick(1)


def test_a_dispatch_whose_writes_fail_ends_failed_with_the_stores_message(small_disk: Path):
    data = small_disk / "data"
    flag = small_disk.parent / "go"
    with isolated_store(data, (), 60):
        dispatch_id = ct.dispatch(flow)(str(flag))
        wait_until(lambda: ct.get_result(dispatch_id).get_node(0).status is ct.Status.COMPLETED, 60)
        filler = fill(small_disk)
        flag.write_text("go")  # the padded task returns 400 kB: its outcome cannot be stored
        full = wait_until(lambda: request({"op": "ping"})["store_full"], 60)
        assert "database or disk is full" in full
        assert ct.get_result(dispatch_id).status is ct.Status.RUNNING
        filler.unlink()  # space allows again
        result = ct.get_result(dispatch_id, wait=True, timeout=120)
        assert result.status is ct.Status.FAILED
        assert "database or disk is full" in result.error
        nodes = {n.node_id: n for n in result.tasks}
        assert nodes[0].status is ct.Status.COMPLETED and nodes[0].output == 2
        for node in result.tasks:
            assert node.status in (ct.Status.COMPLETED, ct.Status.CANCELLED, ct.Status.FAILED)
            if node.status is ct.Status.CANCELLED:
                assert node.cancel_reason == "store error"
        assert integrity(data / "covalent.db") == "ok"
