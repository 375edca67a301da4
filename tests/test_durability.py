"""How far a commit goes: to the disk for what must survive a power loss (dispatches, cancel
requests, handles of jobs that outlive this machine), to the operating system for the rest."""

from __future__ import annotations

from covalent_core.local.executor import LocalExecutor
from covalent_core.plugins import registry
from covalent_core.sdk.base import Executor
from covalent_core.store import open_store


def commit_setting(durable: bool) -> str:
    """The store's own setting for the commit of a write transaction."""
    store = open_store()
    with store.write(durable=durable) as conn:
        if store.is_sqlite:
            return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[
                conn.exec_driver_sql("PRAGMA synchronous").scalar_one()
            ]
        return conn.exec_driver_sql("SHOW synchronous_commit").scalar_one()


def test_a_durable_write_reaches_the_disk_and_a_quick_one_the_operating_system():
    assert commit_setting(durable=True) in ("FULL", "on")
    assert commit_setting(durable=False) in ("NORMAL", "off")
    assert commit_setting(durable=True) in ("FULL", "on")  # one write does not leak into the next


def test_only_the_local_executor_says_its_jobs_die_with_the_machine():
    assert LocalExecutor.jobs_outlive_host is False
    assert Executor.jobs_outlive_host is True
    others = {
        name: info.cls.jobs_outlive_host
        for name, info in registry().executors.items()
        if info.cls is not LocalExecutor
    }
    assert all(others.values()), others
