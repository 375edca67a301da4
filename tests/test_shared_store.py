"""Many hosts, one PostgreSQL store: each dispatch runs on one host, cancels cross hosts, a dead
host's dispatches are taken over once their lease expires, and migrations run once.

Each "host" is a data directory of its own (its own service, socket and task files) pointed at
the same database of a real PostgreSQL server (this session's, on 127.0.0.1). These tests make
their own databases, so they run in the SQLite pass of the suite and are skipped in the
PostgreSQL one (they would be the same tests again).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.migration import MigrationContext
from helpers import logged, starts
from sqlalchemy import create_engine, text

import covalent_core as ct
from covalent_core.sdk.processes import is_dead
from covalent_core.service.client import request
from covalent_core.store.db import HEAD_REVISION
from covalent_core.store.schema import metadata
from covalent_core.testing import (
    as_host,
    dispatch_task,
    isolated_store,
    service_pid,
    wait_until,
)

pytestmark = pytest.mark.skipif(
    os.environ.get("COVALENT_CORE_TEST_STORE") == "postgresql",
    reason="makes its own PostgreSQL databases: run once, in the SQLite pass",
)


@pytest.fixture
def database(postgres) -> str:
    """A new, empty database on the session's PostgreSQL server; its URL."""
    return postgres.create_database(f"t{uuid.uuid4().hex[:12]}")


@contextlib.contextmanager
def two_hosts(tmp_path: Path, url: str, **settings: str) -> Iterator[Path]:
    """Host A (this process's own environment from now) and B, whose data directory this
    yields; both services are stopped at the end."""
    saved = dict(os.environ)
    os.environ.update(settings)
    a, b = tmp_path / "host-a", tmp_path / "host-b"
    try:
        with isolated_store(a, (), 60, db_url=url):
            try:
                yield b
            finally:
                with as_host(b), contextlib.suppress(Exception):
                    request({"op": "shutdown"}, start=False, timeout=10)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def owner_of(url: str, dispatch_id: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT owner FROM dispatches WHERE dispatch_id = :d"), {"d": dispatch_id}
            ).scalar_one()
    finally:
        engine.dispose()


def running_pid(log_dir: Path, name: str) -> int:
    """Wait for the :func:`logged` task ``name`` to start; its PID."""
    path = log_dir / f"{name}.starts"
    wait_until(lambda: path.exists() and path.read_text().strip(), 60, f"{name} started")
    return int(path.read_text().split()[0])


def test_migrations_run_once_when_hosts_start_together(database: str):
    # Six services' worth of first opens at once, on an empty database.
    code = "import sys; from covalent_core.store import open_store; open_store(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, database], stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    engine = create_engine(database)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            differences = compare(conn)
    finally:
        engine.dispose()
    assert versions == [(HEAD_REVISION,)]
    assert differences == []


def compare(conn) -> list:
    from alembic.autogenerate import compare_metadata

    return compare_metadata(MigrationContext.configure(conn), metadata)


def test_a_cancel_from_another_host_reaches_the_task_at_once(tmp_path: Path, database: str):
    # Services read the store for cancels (and renew leases) only every minute or more here:
    # only the notice can reach host A within the wait below.
    log = tmp_path / "log"
    log.mkdir()
    slow = {"COVALENT_CORE_POLL_INTERVAL": "60", "COVALENT_CORE_LEASE_SECONDS": "600"}
    with two_hosts(tmp_path, database, **slow) as b:
        dispatch_id = dispatch_task(logged, "local", str(log), "slow", 300, 1)
        pid = running_pid(log, "slow")
        a_owner = request({"op": "ping"})["owner"]
        assert owner_of(database, dispatch_id) == a_owner
        with as_host(b):
            report = ct.cancel(dispatch_id)
            b_service = service_pid()
        assert 0 in report.requested
        # Host A stopped the task and recorded it; host B never ran it.
        wait_until(lambda: is_dead(pid), 30, "the task's process died")
        result = ct.get_result(dispatch_id, wait=True, timeout=30)
        assert result.status == ct.status.CANCELLED
        assert owner_of(database, dispatch_id) == a_owner
        assert b_service is None or f":{b_service}:" not in a_owner
        assert starts(log, "slow") == 1


def test_a_stalled_hosts_dispatch_is_taken_over_after_its_lease(tmp_path: Path, database: str):
    log = tmp_path / "log"
    log.mkdir()
    with two_hosts(tmp_path, database, COVALENT_CORE_LEASE_SECONDS="2") as b:
        dispatch_id = dispatch_task(logged, "local", str(log), "task", 4, 42)
        running_pid(log, "task")
        a_pid = service_pid()
        assert a_pid is not None
        # Host A's service stops answering (as a host that froze or lost the network would).
        os.kill(a_pid, signal.SIGSTOP)
        try:
            with as_host(b):
                b_owner = request({"op": "ping"})["owner"]  # B's service, awake
            wait_until(
                lambda: owner_of(database, dispatch_id) == b_owner, 60, "host B took it over"
            )
            with as_host(b):
                result = ct.get_result(dispatch_id, wait=True, timeout=60)
        finally:
            os.kill(a_pid, signal.SIGCONT)
        # B re-attached to the running task: it ran once, and its result is B's record.
        assert result.status == ct.status.COMPLETED, result.error
        assert result.result == 42
        assert starts(log, "task") == 1
        # A, resumed, finds its lease taken and leaves without writing or touching anything.
        wait_until(lambda: is_dead(a_pid), 30, "host A's service left")
        assert owner_of(database, dispatch_id) == b_owner
        assert ct.get_result(dispatch_id).status == ct.status.COMPLETED


def token_seen(_after: int) -> str | None:
    import os as _os

    return _os.environ.get("HOST_A_TOKEN")


def test_a_dispatch_taken_over_runs_its_next_tasks_with_the_new_hosts_environment(
    tmp_path: Path, database: str
):
    log = tmp_path / "log"
    log.mkdir()
    first = ct.electron(logged)
    second = ct.electron(token_seen)

    @ct.lattice
    def two_steps(log_dir: str):
        return second(first(log_dir, "first", 4, 1))

    with two_hosts(tmp_path, database, COVALENT_CORE_LEASE_SECONDS="2") as b:
        with as_host(b):
            b_owner = request({"op": "ping"})["owner"]  # started before the variable is set
        os.environ["HOST_A_TOKEN"] = "kept on host A"
        dispatch_id = ct.dispatch(two_steps)(str(log))
        running_pid(log, "first")
        a_pid = service_pid()
        assert a_pid is not None
        os.kill(a_pid, signal.SIGSTOP)
        try:
            wait_until(
                lambda: owner_of(database, dispatch_id) == b_owner, 60, "host B took it over"
            )
            with as_host(b):
                result = ct.get_result(dispatch_id, wait=True, timeout=60)
        finally:
            os.kill(a_pid, signal.SIGCONT)
    assert result.status == ct.status.COMPLETED, result.error
    # Host A's variables stayed on host A: the task B started saw B's service's, and says so.
    assert result.result is None
    note = result.get_node(1 + 4).note  # after the first task and its four parameters
    assert note is not None and "took this dispatch over" in note, note
    assert str(tmp_path / "host-a") in note


def test_each_dispatch_runs_on_exactly_one_host(tmp_path: Path, database: str):
    log = tmp_path / "log"
    log.mkdir()
    with two_hosts(tmp_path, database) as b:
        with as_host(b):
            request({"op": "ping"})  # both services run and look for work
        ids = []
        for i in range(12):
            with contextlib.ExitStack() as stack:
                if i % 2:
                    stack.enter_context(as_host(b))
                ids.append(dispatch_task(logged, "local", str(log), f"t{i}", 0.2, i))
        for i, dispatch_id in enumerate(ids):
            with as_host(b) if i % 2 else contextlib.nullcontext():
                result = ct.get_result(dispatch_id, wait=True, timeout=120)
            assert result.status == ct.status.COMPLETED, result.error
            assert result.result == i
    assert [starts(log, f"t{i}") for i in range(12)] == [1] * 12
    owners = {owner_of(database, d) for d in ids}
    assert None not in owners and len(owners) <= 2


def test_leases_are_renewed_while_a_dispatch_runs(tmp_path: Path, database: str):
    # A dispatch that outlives many leases stays with its service.
    log = tmp_path / "log"
    log.mkdir()
    # 3 s leases (renewed each second): long enough that a busy machine does not starve a
    # renewal, short enough that the task outlives several.
    with two_hosts(tmp_path, database, COVALENT_CORE_LEASE_SECONDS="3") as b:
        with as_host(b):
            request({"op": "ping"})
        started = time.monotonic()
        dispatch_id = dispatch_task(logged, "local", str(log), "long", 10, 7)
        running_pid(log, "long")
        owner = owner_of(database, dispatch_id)
        result = ct.get_result(dispatch_id, wait=True, timeout=60)
        assert time.monotonic() - started > 6  # it outlived two leases (its task: 10 s)
        assert result.result == 7
        assert owner_of(database, dispatch_id) == owner
        assert starts(log, "long") == 1
