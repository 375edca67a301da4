"""No secret is stored: the dispatching process's environment variables stay on its host.

A task on this machine still sees them (an owner-only file beside the service keeps them
while the dispatch runs, and is removed when it ends), but the store, which other hosts and
users may read, never holds them, and no view of a dispatch shows them.
"""

from __future__ import annotations

import hashlib
import os
import stat
import uuid
from pathlib import Path

import pytest
from helpers import cli, wait_until
from sqlalchemy import text

import covalent_core as ct
from covalent_core import config
from covalent_core.host_environment import DIRECTORY
from covalent_core.store import open_store
from covalent_core.store.schema import metadata


@ct.electron
def sees_token(flag_file: str, digest: str) -> bool:
    """Whether the task sees the token (known to it only by its hash, so that the token is
    no argument: arguments are stored)."""
    import hashlib as _hashlib
    import os as _os
    import time as _time

    open(flag_file + ".running", "w").close()
    while not _os.path.exists(flag_file):
        _time.sleep(0.02)
    seen = _os.environ.get("MY_API_TOKEN", "").encode()
    return _hashlib.sha256(seen).hexdigest() == digest


@ct.lattice
def uses_token(flag_file: str, digest: str) -> bool:
    return sees_token(flag_file, digest)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def stored_text() -> str:
    """Everything the store holds, as text: the SQLite files' bytes (with the write-ahead
    log), or every row of every table of the PostgreSQL database."""
    store = open_store()
    url = store.engine.url
    if url.get_backend_name() == "sqlite":
        base = Path(url.database)
        return "".join(
            p.read_bytes().decode("latin-1")
            for p in (base, base.with_name(base.name + "-wal"))
            if p.exists()
        )
    with store.engine.connect() as conn:
        parts = []
        for table in metadata.sorted_tables:
            rows = conn.execute(text(f"SELECT CAST(t AS text) FROM {table.name} t"))
            parts.extend(row[0] for row in rows)
    return "\n".join(parts)


@pytest.fixture
def marker(monkeypatch: pytest.MonkeyPatch) -> str:
    value = f"sk-live-{uuid.uuid4().hex}"
    monkeypatch.setenv("MY_API_TOKEN", value)
    return value


def test_a_tasks_environment_variables_are_never_stored(tmp_path: Path, marker: str):
    flag = tmp_path / "flag"
    dispatch_id = ct.dispatch(uses_token)(str(flag), digest(marker))
    kept = config.service_dir() / DIRECTORY / f"{dispatch_id}.json"
    try:
        # While it runs, this host keeps the variables, owner-only.
        wait_until(lambda: (tmp_path / "flag.running").exists(), 60)
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert marker not in stored_text()
    finally:
        flag.touch()  # the task ends, whatever was found
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.status is ct.Status.COMPLETED, result.error
    assert result.result is True  # the task saw the dispatching process's variable
    assert not kept.exists()  # gone with the dispatch
    assert marker not in stored_text()
    # No view shows them.
    assert marker not in repr(ct.list_dispatches()) + repr(result) + str(result)
    for args in (["list", "--json"], ["status", dispatch_id, "--json"], ["result", dispatch_id]):
        out = cli(*args)
        assert marker not in out.stdout + out.stderr, args


def test_task_environment_service_gives_tasks_the_services_variables(
    tmp_path: Path, marker: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COVALENT_CORE_TASK_ENVIRONMENT", "service")
    # The service runs, started without the variable (one that had exited idle would be
    # started by this dispatch, from this process, with it).
    monkeypatch.delenv("MY_API_TOKEN")
    ct.covalent_start(quiet=True)
    monkeypatch.setenv("MY_API_TOKEN", marker)
    flag = tmp_path / "flag"
    flag.touch()
    dispatch_id = ct.dispatch(uses_token)(str(flag), digest(marker))
    assert not (config.service_dir() / DIRECTORY / f"{dispatch_id}.json").exists()
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.status is ct.Status.COMPLETED, result.error
    # The service was started before the variable was set: its tasks do not see it.
    assert result.result is False


def test_a_wrong_task_environment_setting_is_named(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COVALENT_CORE_TASK_ENVIRONMENT", "mine")
    with pytest.raises(ct.CovalentCoreError, match="COVALENT_CORE_TASK_ENVIRONMENT"):
        ct.dispatch(uses_token)("x", "y")
    assert os.environ["COVALENT_CORE_TASK_ENVIRONMENT"] == "mine"
