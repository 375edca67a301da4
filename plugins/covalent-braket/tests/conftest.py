"""moto (S3) and the Braket quantum-task test double, on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_covalent_servers.aws import REGION, MotoServer  # noqa: F401
from pytest_covalent_servers.braket_double import PREFIX, BraketDouble

BUCKET = "amazon-braket-covalent-tests"
SV1 = PREFIX + "sv1"


@pytest.fixture(scope="session")
def moto(aws_credentials: None) -> Iterator[MotoServer]:
    server = MotoServer()
    server.client("s3").create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def braket(moto: MotoServer) -> Iterator[BraketDouble]:
    double = BraketDouble(moto)
    yield double
    double.stop()


@pytest.fixture(scope="session", autouse=True)
def private_store(covalent_private_store: Path) -> Path:
    """Every test of this package runs in a private covalent-core data directory."""
    return covalent_private_store
