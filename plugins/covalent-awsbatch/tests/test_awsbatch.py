"""AWS Batch specifics against moto and the Batch test double: errors, logs, reuse, reasons."""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
import uuid
from typing import Any

import cloudpickle
import pytest
from conftest import BUCKET, REGION
from test_conformance import make

import covalent_core as ct
from covalent_core.errors import JobLostError
from covalent_core.testing import dispatch_task, finished_task, wait_until
from covalent_core.testing.contexts import nap as nap_by_value
from covalent_core.testing.contexts import task_context


def shout(text: str) -> str:
    print(f"hello from batch: {text}")
    return text.upper()


def nap(seconds: float) -> str:
    import time

    time.sleep(seconds)
    return "rested"


def nothing_left(moto: Any, batch: Any) -> None:
    assert moto.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", []) == []
    assert [j for j in batch.jobs.values() if j.status not in ("SUCCEEDED", "FAILED")] == []


def control(batch: Any, **settings: Any) -> None:
    request = urllib.request.Request(
        f"{batch.url}/control", data=json.dumps(settings).encode(), method="POST"
    )
    urllib.request.urlopen(request).read()


def credentials_file(tmp_path: Any, key: str) -> str:
    path = tmp_path / f"credentials-{key}"
    path.write_text(f"[default]\naws_access_key_id = {key}\naws_secret_access_key = x\n")
    return str(path)


def test_the_result_comes_back_with_the_jobs_logs(moto, batch):
    node = finished_task(dispatch_task(shout, make(moto, batch), "hi"))
    assert node.status is ct.Status.COMPLETED, node.error
    assert node.output == "HI"
    assert "hello from batch: hi" in (node.stdout or "")
    nothing_left(moto, batch)


def test_a_missing_bucket_fails_before_anything_is_uploaded_or_submitted(moto, batch):
    submitted = batch.calls["submitjob"]
    node = finished_task(
        dispatch_task(shout, make(moto, batch, s3_bucket_name="no-such-bucket"), "x")
    )
    assert node.status is ct.Status.FAILED
    assert "S3 bucket 'no-such-bucket' does not exist" in (node.error or ""), node.error
    assert batch.calls["submitjob"] == submitted
    nothing_left(moto, batch)


def test_an_unknown_queue_fails_with_awss_message_and_leaves_nothing(moto, batch):
    node = finished_task(dispatch_task(shout, make(moto, batch, batch_queue="no-such-queue"), "x"))
    assert node.status is ct.Status.FAILED
    assert "Job Queue no-such-queue not found" in (node.error or ""), node.error
    nothing_left(moto, batch)


def test_denied_and_expired_credentials_fail_clearly(moto, batch, tmp_path):
    for key, words in (("DENIEDKEY", "access denied"), ("EXPIREDKEY", "have expired")):
        executor = make(moto, batch, credentials=credentials_file(tmp_path, key))
        node = finished_task(dispatch_task(shout, executor, "x"))
        assert node.status is ct.Status.FAILED
        assert words in (node.error or ""), node.error
    nothing_left(moto, batch)


def test_throttling_is_retried_with_backoff(moto, batch):
    before = sum(batch.calls.values())
    control(batch, throttle=4)
    node = finished_task(dispatch_task(shout, make(moto, batch), "patient"))
    assert node.status is ct.Status.COMPLETED, node.error
    assert sum(batch.calls.values()) - before >= 4 + 3, "throttled calls were not retried"
    nothing_left(moto, batch)


def test_terminate_names_the_dispatch_and_node(moto, batch):
    dispatch_id = dispatch_task(nap, make(moto, batch), 600.0)
    handle = wait_until(lambda: ct.get_result(dispatch_id).get_node(0).job_handle, 60)
    job = batch.jobs[handle["job_id"]]
    wait_until(lambda: job.status == "RUNNING", 30)
    ct.cancel(dispatch_id, wait=True, timeout=60)
    assert job.status == "FAILED" and job.proc is not None and job.proc.poll() is not None
    assert dispatch_id in job.reason and "node 0" in job.reason, job.reason
    assert finished_task(dispatch_id).status is ct.Status.CANCELLED
    nothing_left(moto, batch)


def test_job_definitions_are_reused_by_content(moto, batch):
    registered = batch.calls["registerjobdefinition"]
    for text in ("a", "b"):
        assert (
            finished_task(dispatch_task(shout, make(moto, batch, vcpu=3), text)).status.value
            == "COMPLETED"
        )
    assert batch.calls["registerjobdefinition"] - registered <= 1
    names = [
        n
        for n, defs in batch.definitions.items()
        if defs[0]["containerProperties"]["resourceRequirements"][0]["value"] == "3"
    ]
    assert len(names) == 1


def test_covalents_default_image_when_none_is_given():
    from covalent_awsbatch import AWSBatchExecutor
    from covalent_awsbatch.remote import DEFAULT_IMAGE, program

    executor = AWSBatchExecutor(s3_bucket_name="b", batch_queue="q", cache_dir="/tmp/unused")
    assert (
        executor.image == DEFAULT_IMAGE == "public.ecr.aws/covalent/covalent-executor-base:stable"
    )
    # The job's program is self-contained: Python's standard library, boto3 and cloudpickle
    # are all it imports.
    source = program()
    imports = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from ")) or line.startswith("    import ")
    }
    assert imports <= {*sys.stdlib_module_names, "__future__", "cloudpickle", "boto3"}, imports


def test_a_job_submitted_before_its_handle_was_stored_is_adopted_not_resubmitted(moto, batch):
    """The dispatcher died between submit_job and storing the job id."""
    dispatch_id = str(uuid.uuid4())
    before = batch.calls["submitjob"]

    async def scenario() -> None:
        dead = make(moto, batch)
        task = task_context(dispatch_id, 2, nap_by_value, [0.5])  # no handle is stored
        for stage in (dead.pickle, dead.upload, dead.provision, dead.run):
            await stage(task)
        submitted = task.state["job_id"]

        stored: list[str] = []
        fresh = make(moto, batch)
        other = task_context(str(uuid.uuid4()), 2, nap_by_value, [0.5], stored)
        assert await fresh.reattach(other, None) is False  # never submitted
        again = task_context(dispatch_id, 2, nap_by_value, [0.5], stored)
        assert await fresh.reattach(again, None) is True
        assert [json.loads(h)["job_id"] for h in stored] == [submitted]
        await fresh.fetch(again)
        assert again.outcome is not None and again.outcome.ok, again.outcome
        assert cloudpickle.loads(again.outcome.output) == "rested"
        await fresh.cleanup(again)

    asyncio.run(scenario())
    assert batch.calls["submitjob"] - before == 1
    nothing_left(moto, batch)


def test_a_job_aws_has_forgotten_without_an_outcome_is_reported_lost(moto, batch):
    async def scenario() -> None:
        executor = make(moto, batch)
        task = task_context(str(uuid.uuid4()), 0, nap_by_value, [0.1])
        handle = {"region": REGION, "job_id": str(uuid.uuid4())}
        with pytest.raises(JobLostError, match="no longer knows job"):
            await executor.reattach(task, json.dumps(handle))

    asyncio.run(scenario())
