"""A damaged, foreign or newer store is refused: one message naming the file, what is wrong
and what to do; the file is left exactly as it was."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import covalent_core as ct
from covalent_core.errors import ServiceError, StoreError
from covalent_core.sdk.processes import is_dead
from covalent_core.service.client import START_TIMEOUT, request, service_process
from covalent_core.store.db import forget_stores
from covalent_core.testing import isolated_store, service_pid, wait_until


@ct.electron
def one():
    return 1


@ct.lattice
def flow():
    return one()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def garbage(db: Path) -> None:
    db.write_bytes(b"this is not a database\n" * 100)


def truncated(db: Path) -> None:
    db.write_bytes(db.read_bytes()[:5000])


def sql(db: Path, statement: str) -> None:
    """Run ``statement`` on ``db``, its write folded into the file before this returns (not
    left in the write-ahead log for the next reader to fold in: that would change the file
    under the test's digest)."""
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute(statement)
        for _ in range(100):  # a reader of a moment ago may still hold the log
            busy, *_ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                break
            time.sleep(0.1)
    finally:
        conn.close()


def foreign(db: Path) -> None:
    db.unlink()
    sql(db, "CREATE TABLE invoices (id INTEGER, amount REAL)")  # not in WAL mode


def newer(db: Path) -> None:
    sql(db, "UPDATE alembic_version SET version_num = '0999'")


def two_revisions(db: Path) -> None:
    sql(db, "INSERT INTO alembic_version VALUES ('0002')")


def half_migrated(db: Path) -> None:
    """As a migration interrupted where schema changes are not transactional leaves it: the
    previous revision recorded, some of the next one's changes made."""
    sql(db, "UPDATE alembic_version SET version_num = '0007'")
    sql(db, "DROP INDEX ux_dispatches_key")


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "half migrated": (half_migrated, "says it is at schema revision 0007 but its tables do not"),
    "garbage": (garbage, "is not an SQLite database"),
    "truncated": (truncated, "It is damaged"),
    "foreign": (foreign, "is not a covalent-core store"),
    "newer": (newer, "written by a newer covalent-core"),
    "two revisions": (two_revisions, "has 2 schema revision rows"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_store_is_refused_and_left_untouched(tmp_path: Path, case: str):
    spoil, message = CASES[case]
    with isolated_store(tmp_path / "data", (), 30) as data:
        db = data / "covalent.db"
        assert ct.dispatch_sync(flow, timeout=60)().result == 1
        pid = service_pid()
        ct.covalent_stop(quiet=True)
        if pid is not None:
            wait_until(lambda: is_dead(pid), 30)  # its last writes are in
        forget_stores()
        # Fold the write-ahead log in, then spoil the file.
        sql(db, "PRAGMA wal_checkpoint(TRUNCATE)")
        spoil(db)
        before = digest(db)
        out = subprocess.run(
            [sys.executable, "-m", "covalent_core", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ),
        )
        assert out.returncode == 1
        assert out.stderr.startswith(f"error: store {db} "), out.stderr
        assert message in out.stderr and "Nothing was changed" in out.stderr
        assert "Traceback" not in out.stderr
        assert digest(db) == before
        with pytest.raises(StoreError, match=message):
            ct.dispatch(flow)()
        assert digest(db) == before


def interrupt_checkpoint(db: Path) -> None:
    """Leave ``db`` as a process killed in the middle of a checkpoint does: the file's first
    page, written first, already counts the pages the write-ahead log holds, and the file
    does not have them yet. SQLite reads them from the log, which stays whole."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    with conn:
        conn.execute("CREATE TABLE filler (blob BLOB)")
        conn.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(3000),)] * 40)
    wal = Path(f"{db}-wal").read_bytes()
    page_size = int.from_bytes(wal[8:12], "big")
    first_page = None
    for offset in range(32, len(wal), 24 + page_size):  # the log's frames, in order
        if int.from_bytes(wal[offset : offset + 4], "big") == 1:
            first_page = wal[offset + 24 : offset + 24 + page_size]
    assert first_page is not None
    # Keep a copy of the log as it is now, before the connection closes (and checkpoints).
    saved = {suffix: Path(f"{db}{suffix}").read_bytes() for suffix in ("", "-wal")}
    conn.close()
    Path(f"{db}-wal").write_bytes(saved["-wal"])
    Path(db).write_bytes(first_page + saved[""][page_size:])


def test_a_store_left_by_a_checkpoint_cut_short_opens_with_nothing_lost(tmp_path: Path):
    """A service killed while SQLite folds its write-ahead log into the file leaves a file
    shorter than its header says; the log still holds every page. That is no damage: the
    next service opens the store (it was refused, and no service could start)."""
    with isolated_store(tmp_path / "data", (), 30) as data:
        db = data / "covalent.db"
        first = ct.dispatch(flow)()
        assert ct.get_result(first, wait=True, timeout=60).result == 1
        ct.covalent_stop(quiet=True)  # returns once the process is gone
        forget_stores()
        interrupt_checkpoint(db)
        header_pages = int.from_bytes(db.read_bytes()[28:32], "big")
        page_size = int.from_bytes(db.read_bytes()[16:18], "big")
        assert db.stat().st_size < header_pages * page_size  # as the crash left it
        assert ct.dispatch_sync(flow, timeout=60)().result == 1
        assert ct.get_result(first).result == 1


def test_a_service_that_cannot_start_says_why_at_once(tmp_path: Path):
    """A client whose process opened the store before it was spoiled starts a service, which
    refuses the store: the client says why within a moment, not "did not start within 30 s"."""
    with isolated_store(tmp_path / "data", (), 30) as data:
        assert ct.dispatch_sync(flow, timeout=60)().result == 1
        ct.covalent_stop(quiet=True)  # returns once the process is gone
        assert service_process() is None
        newer(data / "covalent.db")
        started = time.monotonic()
        with pytest.raises(ServiceError, match=r"cannot start: store .* newer covalent-core"):
            request({"op": "ping"})
        assert time.monotonic() - started < START_TIMEOUT
