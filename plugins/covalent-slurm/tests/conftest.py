"""A real single-node Slurm cluster and an OpenSSH server on 127.0.0.1, started here."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from covalent_core.testing import isolated_store

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "infra"))

from slurm import SlurmCluster  # noqa: E402
from sshd import SSHD, SSHServer  # noqa: E402


@pytest.fixture(scope="session")
def cluster() -> Iterator[SlurmCluster]:
    if shutil.which("slurmctld") is None:
        pytest.fail("Slurm is not installed: run tests/infra/install.sh (scripts/test.sh does)")
    started = SlurmCluster.start()
    yield started
    started.stop()


@pytest.fixture(scope="session")
def sshd() -> Iterator[SSHServer]:
    if not os.path.exists(SSHD):
        pytest.fail(f"{SSHD} is missing: run tests/infra/install.sh (scripts/test.sh does)")
    server = SSHServer.start()
    yield server
    server.remove()


@pytest.fixture(scope="session", autouse=True)
def private_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with isolated_store(tmp_path_factory.mktemp("data")) as data:
        yield data
