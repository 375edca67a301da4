"""moto (S3, CloudWatch Logs, IAM) and the AWS Batch lifecycle test double, on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_covalent_servers.aws import REGION, BatchDouble, MotoServer  # noqa: F401

BUCKET = "covalent-tests"
QUEUE = "covalent-queue"


@pytest.fixture(scope="session")
def moto(aws_credentials: None) -> Iterator[MotoServer]:
    server = MotoServer()
    server.client("s3").create_bucket(Bucket=BUCKET)
    server.client("iam").create_role(
        RoleName="covalent-job-role", AssumeRolePolicyDocument="{}", Path="/"
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def batch(moto: MotoServer) -> Iterator[BatchDouble]:
    double = BatchDouble(moto, queues=(QUEUE,))
    yield double
    double.stop()


@pytest.fixture(scope="session", autouse=True)
def private_store(covalent_private_store: Path) -> Path:
    """Every test of this package runs in a private covalent-core data directory."""
    return covalent_private_store
