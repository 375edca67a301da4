"""Every test runs against a real store and a real dispatcher service in a private data dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from covalent_core.testing import isolated_store

HERE = Path(__file__).resolve().parent
SUPPORT = HERE / "support"
sys.path.insert(0, str(SUPPORT))


@pytest.fixture(scope="session", autouse=True)
def private_store(tmp_path_factory: pytest.TempPathFactory):
    """A data directory of this test session's own; its service is stopped at the end."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SUPPORT), str(HERE.parent), saved) if p
    )
    with isolated_store(tmp_path_factory.mktemp("data"), ("recording_executor",), 60) as data:
        yield data
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved
