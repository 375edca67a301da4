"""A full disk: nothing is lost, no dispatch stays RUNNING, the error says what happened.

The data directory lives on a small tmpfs mounted by the test (as root), filled up with a
file the test controls; freeing it is "once space allows".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import covalent_core as ct
from covalent_core import config
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
        with pytest.raises(StoreFullError, match=r"could not be written: .*(full|No space)"):
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


@pytest.fixture
def disk_64m(tmp_path: Path) -> Iterator[Path]:
    """A 64 MB tmpfs with few inodes (so that making files can fail too)."""
    mount = tmp_path / "disk64"
    mount.mkdir(mode=0o700)
    options = "size=64m,nr_inodes=4000,mode=0700"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_waiting_for_a_dispatch_whose_store_is_full_says_so(small_disk: Path):
    data = small_disk / "data"
    flag = small_disk.parent / "go"
    with isolated_store(data, (), 60):
        dispatch_id = ct.dispatch(flow)(str(flag))
        wait_until(lambda: ct.get_result(dispatch_id).get_node(0).status is ct.Status.COMPLETED, 60)
        filler = fill(small_disk)
        flag.write_text("go")  # its outcome cannot be stored
        with pytest.raises(StoreFullError) as raised:
            ct.get_result(dispatch_id, wait=True, timeout=60)
        message = str(raised.value)
        assert "the store's disk is full" in message and str(data / "covalent.db") in message
        assert "free space" in message and "nothing is lost" in message
        filler.unlink()
        result = ct.get_result(dispatch_id, wait=True, timeout=120)
        assert result.status is ct.Status.FAILED
        assert result.get_node(0).output == 2  # kept


@ct.electron
def huge(megabytes: int) -> bytes:
    return b"x" * (megabytes << 20)


@ct.lattice
def huge_flow(megabytes: int) -> bytes:
    return huge(megabytes)


def test_a_result_too_big_for_the_disk_fails_saying_so_and_leaves_no_file(disk_64m: Path):
    data = disk_64m / "data"
    with isolated_store(data, (), 60):
        result = ct.dispatch_sync(huge_flow, timeout=120)(100)
        assert result.status is ct.Status.FAILED, [
            (n.node_id, n.name, n.status, n.job_handle) for n in result.nodes
        ]
        error = result.get_node(0).error
        assert "could not be written to" in error and "No space left on device" in error, error
        assert "Free some space" in error
        left = [p.name for p in (data / "values").rglob("*") if p.is_file()]
        assert left == [], f"left behind: {left}"
        # The disk is usable again: nothing holds its space.
        assert ct.dispatch_sync(quick_flow, timeout=60)().result == 2


def fill_inodes(disk: Path) -> Path:
    """Use up every inode of the disk with empty files; the directory to remove to free them."""
    spent = disk / "inodes"
    spent.mkdir()
    index = 0
    with contextlib.suppress(OSError):
        while True:
            (spent / str(index)).touch()
            index += 1
    return spent


def test_a_task_that_cannot_make_its_files_fails_saying_so(
    disk_64m: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # The store elsewhere, the data directory (task files, values) on the disk that fills;
    # the dispatching process keeps no file there (its tasks see the service's environment).
    monkeypatch.setenv("COVALENT_CORE_TASK_ENVIRONMENT", "service")
    data = disk_64m / "data"
    with isolated_store(data, (), 60, db_url=f"sqlite:///{tmp_path / 'store.db'}"):
        assert ct.dispatch_sync(quick_flow, timeout=60)().result == 2  # workers are warm
        # Its task directories are removed after it ended: then no inode frees up later.
        tasks = config.tasks_dir()
        wait_until(lambda: not any(tasks.iterdir()), 30)
        spent = fill_inodes(disk_64m)
        try:
            result = ct.dispatch_sync(quick_flow, timeout=60)()
        finally:
            shutil.rmtree(spent)
        assert result.status is ct.Status.FAILED, [
            (n.node_id, n.name, n.status, n.job_handle) for n in result.nodes
        ]
        error = result.get_node(0).error
        assert "could not start" in error and "No space left on device" in error, error
