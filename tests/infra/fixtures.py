"""Session fixtures that start the real test servers; plugin conftests import what they need.

from fixtures import aws_credentials, cluster, private_store, sshd  # noqa: F401
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from covalent_core.testing import isolated_store


@pytest.fixture(scope="session")
def sshd() -> Iterator[object]:
    """A real OpenSSH server on 127.0.0.1 with its own keys (see sshd.py)."""
    from sshd import SSHD, SSHServer

    if not os.path.exists(SSHD):
        pytest.fail(f"{SSHD} is missing: run tests/infra/install.sh (scripts/test.sh does)")
    server = SSHServer.start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def cluster() -> Iterator[object]:
    """A real single-node Slurm cluster on 127.0.0.1 (see slurm.py)."""
    from slurm import SlurmCluster

    if shutil.which("slurmctld") is None:
        pytest.fail("Slurm is not installed: run tests/infra/install.sh (scripts/test.sh does)")
    started = SlurmCluster.start()
    yield started
    started.stop()


@pytest.fixture(scope="session")
def aws_credentials() -> Iterator[None]:
    """Dummy AWS credentials for every boto3 client, here and in the dispatcher service."""
    from aws import CREDENTIALS, REGION

    saved = {k: os.environ.get(k) for k in (*CREDENTIALS, "AWS_DEFAULT_REGION")}
    os.environ.update(CREDENTIALS, AWS_DEFAULT_REGION=REGION)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session", autouse=True)
def private_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private covalent-core data directory and service for the session."""
    with isolated_store(tmp_path_factory.mktemp("data")) as data:
        yield data
