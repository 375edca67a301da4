"""moto on 127.0.0.1 for the S3 and error tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "infra"))

from aws import MotoServer  # noqa: E402
from fixtures import aws_credentials  # noqa: E402, F401


@pytest.fixture(scope="session")
def moto(aws_credentials: None) -> Iterator[MotoServer]:  # noqa: F811
    server = MotoServer()
    yield server
    server.stop()
