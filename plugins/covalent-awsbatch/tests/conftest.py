"""moto (S3, CloudWatch Logs, IAM) and the AWS Batch lifecycle test double, on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from covalent_core.testing import isolated_store

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "infra"))

from aws import CREDENTIALS, REGION, BatchDouble, MotoServer  # noqa: E402

BUCKET = "covalent-tests"
QUEUE = "covalent-queue"


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
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
def private_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Dummy credentials for every boto3 client, in this process and in the dispatcher.
    saved = {k: os.environ.get(k) for k in (*CREDENTIALS, "AWS_DEFAULT_REGION")}
    os.environ.update(CREDENTIALS, AWS_DEFAULT_REGION=REGION)
    with isolated_store(tmp_path_factory.mktemp("data")) as data:
        yield data
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
