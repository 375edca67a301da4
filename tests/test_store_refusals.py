"""A damaged, foreign or newer store is refused: one message naming the file, what is wrong
and what to do; the file is left exactly as it was."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import covalent_core as ct
from covalent_core.errors import StoreError
from covalent_core.executors.processes import is_dead
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
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute(statement)
    finally:
        conn.close()  # the last connection folds the write-ahead log into the file


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
