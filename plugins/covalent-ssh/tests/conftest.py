"""A real OpenSSH server on 127.0.0.1 (fixture ``sshd``, from pytest-covalent-servers) and a
private covalent-core store."""

from __future__ import annotations

from pathlib import Path

import pytest

# The non-root user and its Python with cloudpickle: `covalent-servers-install` makes both.
USER = "covtest"
USER_PYTHON = "/home/covtest/venv/bin/python"


@pytest.fixture(scope="session", autouse=True)
def private_store(covalent_private_store: Path) -> Path:
    """Every test of this package runs in a private covalent-core data directory."""
    return covalent_private_store
