"""Every test runs against a real store and a real dispatcher service in a private data dir."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SUPPORT = HERE / "support"
sys.path.insert(0, str(SUPPORT))


@pytest.fixture(scope="session", autouse=True)
def private_store(tmp_path_factory: pytest.TempPathFactory):
    """A data directory of this test session's own; its service is stopped at the end."""
    data = tmp_path_factory.mktemp("data")
    saved = dict(os.environ)
    os.environ["COVALENT_CORE_DATA_DIR"] = str(data)
    os.environ.pop("COVALENT_CORE_DB_URL", None)
    os.environ["COVALENT_CORE_CONFIG"] = str(data / "config.toml")
    os.environ["COVALENT_CORE_IDLE_TIMEOUT"] = "60"
    os.environ["COVALENT_CORE_EXTRA_PLUGINS"] = "recording_executor"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SUPPORT), str(HERE.parent), saved.get("PYTHONPATH")) if p
    )
    from covalent_core.plugins import reset_registry
    from covalent_core.store.db import forget_stores

    reset_registry()
    forget_stores()
    yield data
    from covalent_core.service.client import request

    with contextlib.suppress(Exception):
        request({"op": "shutdown"}, start=False, timeout=5)
    os.environ.clear()
    os.environ.update(saved)
