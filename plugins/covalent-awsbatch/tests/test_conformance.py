"""AWSBatchExecutor passes covalent-core's conformance suite against the Batch test double
(jobs really run as local processes reading and writing moto's S3)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import BUCKET, QUEUE, REGION
from covalent_awsbatch import AWSBatchExecutor

from covalent_core.testing import ExecutorConformance

PYTHON = str(Path(sys.executable).absolute())


def make(moto, batch, **overrides) -> AWSBatchExecutor:
    options = {
        "s3_bucket_name": BUCKET,
        "batch_queue": QUEUE,
        "container_image_uri": "covalent-tests:latest",
        "region": REGION,
        "service_endpoints": {
            "s3": moto.url,
            "logs": moto.url,
            "iam": moto.url,
            "batch": batch.url,
        },
        "container_python": PYTHON,
        "poll_freq": 0.2,
        "batch_job_role_name": "covalent-job-role",
    }
    options.update(overrides)
    return AWSBatchExecutor(**options)


class TestAWSBatch(ExecutorConformance):
    @pytest.fixture
    def executor(self, moto, batch) -> AWSBatchExecutor:
        return make(moto, batch)

    @pytest.fixture
    def job_alive(self, batch) -> Callable[[str], bool]:
        def alive(handle: str) -> bool:
            job = batch.jobs.get(json.loads(handle)["job_id"])
            return job is not None and job.status not in ("SUCCEEDED", "FAILED")

        return alive

    @pytest.fixture
    def leftovers(self, moto, batch) -> Callable[[], list[str]]:
        s3 = moto.client("s3")

        def left() -> list[str]:
            objects = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
            running = [
                f"job {j.job_id} {j.status}"
                for j in batch.jobs.values()
                if j.status not in ("SUCCEEDED", "FAILED")
            ]
            return [o["Key"] for o in objects] + running

        return left
