"""moto (S3, CloudWatch Logs, IAM) and the AWS Batch lifecycle test double, on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "infra"))

from aws import REGION, BatchDouble, MotoServer  # noqa: E402, F401
from fixtures import aws_credentials, private_store  # noqa: E402, F401

BUCKET = "covalent-tests"
QUEUE = "covalent-queue"


@pytest.fixture(scope="session")
def moto(aws_credentials: None) -> Iterator[MotoServer]:  # noqa: F811
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
