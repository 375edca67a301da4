"""moto (S3) and the Braket quantum-task test double, on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from covalent_core.testing import isolated_store

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "infra"))

from aws import CREDENTIALS, REGION, MotoServer  # noqa: E402
from braket_double import PREFIX, BraketDouble  # noqa: E402

BUCKET = "amazon-braket-covalent-tests"
SV1 = PREFIX + "sv1"


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
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
def private_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    saved = {k: os.environ.get(k) for k in (*CREDENTIALS, "AWS_DEFAULT_REGION")}
    os.environ.update(CREDENTIALS, AWS_DEFAULT_REGION=REGION)
    with isolated_store(tmp_path_factory.mktemp("data")) as data:
        yield data
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
