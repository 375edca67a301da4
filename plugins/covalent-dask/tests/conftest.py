"""A real Dask cluster (``dask scheduler`` and two ``dask worker`` processes) on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_store(covalent_private_store: Path) -> Path:
    """Every test of this package runs in a private covalent-core data directory."""
    return covalent_private_store
