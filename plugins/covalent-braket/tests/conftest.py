"""moto (S3) and the Braket quantum-task test double, on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "infra"))

from aws import REGION, MotoServer  # noqa: E402, F401
from braket_double import PREFIX, BraketDouble  # noqa: E402
from fixtures import aws_credentials, private_store  # noqa: E402, F401

BUCKET = "amazon-braket-covalent-tests"
SV1 = PREFIX + "sv1"


@pytest.fixture(scope="session")
def moto(aws_credentials: None) -> Iterator[MotoServer]:  # noqa: F811
    server = MotoServer()
    server.client("s3").create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def braket(moto: MotoServer) -> Iterator[BraketDouble]:
    double = BraketDouble(moto)
    yield double
    double.stop()
