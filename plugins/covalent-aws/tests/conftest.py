"""moto on 127.0.0.1 for the S3 and error tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_covalent_servers.aws import MotoServer


@pytest.fixture(scope="session")
def moto(aws_credentials: None) -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()
