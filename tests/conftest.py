"""Every test runs against a real store and a real dispatcher service in a private data dir.

The store is SQLite in that directory, or, with ``COVALENT_CORE_TEST_STORE=postgresql``, a
database of a real PostgreSQL server that this session starts on 127.0.0.1 and throws away.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from covalent_core.testing import isolated_store

HERE = Path(__file__).resolve().parent
SUPPORT = HERE / "support"
sys.path.insert(0, str(SUPPORT))
STORE_KIND = os.environ.get("COVALENT_CORE_TEST_STORE", "sqlite")

# The machine may be busy (CI runs other programs, and these tests run two at a time):
# Hypothesis's checks of its own speed would fail there for reasons that are not ours.
settings.register_profile(
    "busy", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("busy")


def pytest_report_header() -> str:
    """Say which store the session runs on."""
    return f"covalent-core store under test: {STORE_KIND}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A real PostgreSQL server of this session's own (see pytest_covalent_servers.postgres)."""
    from pytest_covalent_servers.postgres import PostgresServer, bin_dir

    if bin_dir() is None:
        pytest.fail("PostgreSQL is not installed: run covalent-servers-install (as root)")
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def private_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A data directory of this test session's own; its service is stopped at the end."""
    if STORE_KIND not in ("sqlite", "postgresql"):
        pytest.exit(f"COVALENT_CORE_TEST_STORE must be sqlite or postgresql, not {STORE_KIND!r}")
    db_url = None
    if STORE_KIND == "postgresql":
        db_url = request.getfixturevalue("postgres").create_database("suite")
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SUPPORT), str(HERE.parent), saved) if p
    )
    data = tmp_path_factory.mktemp("data")
    with isolated_store(data, ("recording_executor",), 60, db_url=db_url) as data:
        yield data
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved
