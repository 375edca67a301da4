"""Quantum tasks against the Braket test double (results really simulated, in moto's S3),
the local simulator, and botocore's Stubber (every request checked against the API model)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from braket.circuits import Circuit
from conftest import BUCKET, REGION, SV1
from covalent_braket import BraketExecutor
from helpers import control, make, objects, unfinished
from pytest_covalent_servers.braket_double import PREFIX

import covalent_core as ct
from covalent_core.errors import JobLostError
from covalent_core.sdk import TaskContext
from covalent_core.testing import dispatch_task, finished_task, kill_service, wait_until
from covalent_core.testing.contexts import task_context


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "braket"


@pytest.fixture(autouse=True)
def quick_tasks(braket):
    control(braket, run_seconds=0.5)
    yield
    control(braket, run_seconds=0.5)


def bell() -> Circuit:
    from braket.circuits import Circuit

    return Circuit().h(0).cnot(0, 1)


def bell_qasm() -> str:
    return "OPENQASM 3.0;\nbit[2] b;\nqubit[2] q;\nh q[0];\ncnot q[0], q[1];\nb = measure q;"


def slow_bell() -> Circuit:
    import time

    from braket.circuits import Circuit

    time.sleep(30)
    return Circuit().h(0).cnot(0, 1)


def three_qubits() -> Circuit:
    from braket.circuits import Circuit

    return Circuit().h(0).cnot(0, 1).cnot(1, 2)


def broken_program() -> str:
    return "OPENQASM 3.0;\nqubit[1] q;\nnot_a_gate q[0];"


def variational_loop(device_arn: str, bucket: str) -> str:
    """A hybrid electron: submits quantum tasks of its own, then keeps working."""
    import time

    from braket.aws import AwsQuantumTask, AwsSession
    from braket.circuits import Circuit

    session = AwsSession()
    for angle in (0.1, 0.2, 0.3):
        AwsQuantumTask.create(session, device_arn, Circuit().rx(0, angle), (bucket, "hybrid"), 10)
    time.sleep(600)
    return "converged"


def assert_nothing_left(moto: Any, braket: Any, workdir: Path) -> None:
    assert unfinished(braket) == []
    assert objects(moto) == []
    assert not workdir.exists() or list(workdir.iterdir()) == []


# -- results ---------------------------------------------------------------------------


@pytest.mark.parametrize("program", [bell, bell_qasm], ids=["circuit", "openqasm"])
def test_a_program_runs_on_the_device_and_returns_counts(moto, braket, workdir, program):
    node = finished_task(dispatch_task(program, make(moto, braket, workdir)))
    assert node.status is ct.Status.COMPLETED, node.error
    result = node.output
    assert set(result["measurement_counts"]) <= {"00", "11"}
    assert sum(result["measurement_counts"].values()) == 100
    assert abs(sum(result["measurement_probabilities"].values()) - 1) < 1e-9
    assert node.job_handle["arn"] == result["task_arn"]
    assert braket.tasks[result["task_arn"]].status == "COMPLETED"
    assert_nothing_left(moto, braket, workdir)


def test_the_local_simulator_needs_no_aws(workdir):
    executor = BraketExecutor(device_arn="local:braket_sv", shots=50, workdir=str(workdir))
    node = finished_task(dispatch_task(bell, executor))
    assert node.status is ct.Status.COMPLETED, node.error
    assert sum(node.output["measurement_counts"].values()) == 50
    assert node.output["task_arn"] is None


# -- cancellation ----------------------------------------------------------------------


def test_cancel_cancels_the_running_quantum_task(moto, braket, workdir):
    control(braket, run_seconds=60)
    dispatch_id = dispatch_task(bell, make(moto, braket, workdir))
    handle = wait_until(lambda: ct.get_result(dispatch_id).get_node(0).job_handle, 60)
    task = braket.tasks[handle["arn"]]
    wait_until(lambda: task.status == "RUNNING", 60)
    start = time.monotonic()
    ct.cancel(dispatch_id, wait=True, timeout=60)
    assert task.status == "CANCELLED", task.status
    print(f"cancel -> quantum task CANCELLED in {time.monotonic() - start:.2f} s")
    assert finished_task(dispatch_id).status is ct.Status.CANCELLED
    assert_nothing_left(moto, braket, workdir)


def test_cancel_before_creation_creates_no_quantum_task(moto, braket, workdir):
    created = braket.calls["CreateQuantumTask"]
    dispatch_id = dispatch_task(slow_bell, make(moto, braket, workdir))
    wait_until(lambda: ct.get_result(dispatch_id).get_node(0).stage == "provision", 60)
    ct.cancel(dispatch_id, wait=True, timeout=60)
    time.sleep(1)
    assert finished_task(dispatch_id).status is ct.Status.CANCELLED
    assert braket.calls["CreateQuantumTask"] == created, "a quantum task was created"
    assert_nothing_left(moto, braket, workdir)


def test_cancel_from_a_fresh_process_cancels_the_quantum_task(moto, braket, workdir):
    control(braket, run_seconds=60)
    dispatch_id = dispatch_task(bell, make(moto, braket, workdir))
    handle = wait_until(lambda: ct.get_result(dispatch_id).get_node(0).job_handle, 60)
    fresh = subprocess.run(
        [sys.executable, "-m", "covalent_core.testing.fresh_cancel", dispatch_id, "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout.splitlines()[-1])["confirmed"] is True
    assert braket.tasks[handle["arn"]].status == "CANCELLED"
    node = finished_task(dispatch_id)
    assert node.status is ct.Status.FAILED and "cancelled outside covalent" in (node.error or "")


def test_a_hybrid_electron_is_killed_and_all_its_quantum_tasks_cancelled(moto, braket, workdir):
    control(braket, run_seconds=60)
    executor = make(moto, braket, workdir, hybrid=True)
    dispatch_id = dispatch_task(variational_loop, executor, SV1, BUCKET)
    arns_file = Path(
        wait_until(lambda: ct.get_result(dispatch_id).get_node(0).job_handle, 60)["arns_file"]
    )
    wait_until(lambda: arns_file.exists() and len(arns_file.read_text().split()) == 3, 60)
    arns = arns_file.read_text().split()
    ct.cancel(dispatch_id, wait=True, timeout=60)
    assert [braket.tasks[a].status for a in arns] == ["CANCELLED"] * 3
    assert finished_task(dispatch_id).status is ct.Status.CANCELLED
    assert unfinished(braket) == []


# -- outcomes and bad input -------------------------------------------------------------


def test_a_failed_quantum_task_reports_brakets_reason(moto, braket, workdir):
    node = finished_task(dispatch_task(broken_program, make(moto, braket, workdir)))
    assert node.status is ct.Status.FAILED
    assert "FAILED" in (node.error or "") and "not_a_gate" in (node.error or ""), node.error


@pytest.mark.parametrize(
    ("program", "overrides", "words"),
    [
        (bell, {"device_arn": PREFIX + "nope"}, "does not exist"),
        (bell, {"device_arn": PREFIX + "offline"}, "DeviceOfflineException"),
        (three_qubits, {"device_arn": PREFIX + "small"}, "uses 3 qubits"),
        (bell, {"s3_bucket_name": "no-such-bucket"}, "S3 bucket 'no-such-bucket' does not exist"),
        (bell, {"credentials": "DENIED"}, "access denied"),
        (lambda: 42, {}, "must return a braket Circuit"),
    ],
    ids=["unknown-device", "offline", "too-many-qubits", "no-bucket", "denied", "not-a-program"],
)
def test_bad_input_fails_clearly_and_queues_nothing(
    moto, braket, workdir, tmp_path, program, overrides, words
):
    if overrides.get("credentials") == "DENIED":
        path = tmp_path / "credentials"
        path.write_text("[default]\naws_access_key_id = DENIEDKEY\naws_secret_access_key = x\n")
        overrides = {**overrides, "credentials": str(path)}
    created = len(braket.tasks)
    node = finished_task(dispatch_task(program, make(moto, braket, workdir, **overrides)))
    assert node.status is ct.Status.FAILED
    assert words in (node.error or ""), node.error
    assert len(braket.tasks) == created
    assert_nothing_left(moto, braket, workdir)


# -- every request against the real API model --------------------------------------------


def test_requests_match_the_braket_api_model(tmp_path):
    asyncio.run(check_requests(tmp_path))


async def check_requests(tmp_path: Path) -> None:
    client = boto3.client("braket", region_name=REGION)
    executor = BraketExecutor(
        device_arn=SV1, s3_bucket_name=BUCKET, region=REGION, workdir=str(tmp_path)
    )
    executor._braket = client
    arn = f"arn:aws:braket:{REGION}:123456789012:quantum-task/abc"
    summary = {
        "quantumTaskArn": arn,
        "status": "CANCELLED",
        "deviceArn": SV1,
        "shots": 100,
        "outputS3Bucket": BUCKET,
        "outputS3Directory": "p/abc",
        "createdAt": 0,
    }
    with Stubber(client) as stub:
        stub.add_response(
            "create_quantum_task",
            {"quantumTaskArn": arn},
            {
                "deviceArn": SV1,
                "shots": 100,
                "action": ANY,
                "deviceParameters": ANY,
                "outputS3Bucket": BUCKET,
                "outputS3KeyPrefix": "covalent-braket/d/0",
                "tags": {"covalent-dispatch": "d", "covalent-node": "0"},
                # The same for every attempt at this task: Braket then creates it only once.
                "clientToken": str(uuid.uuid5(uuid.NAMESPACE_URL, "covalent-core:d:0")),
            },
        )
        stub.add_response(
            "cancel_quantum_task",
            {"quantumTaskArn": arn, "cancellationStatus": "CANCELLING"},
            {"quantumTaskArn": arn, "clientToken": ANY},
        )
        stub.add_response(
            "search_quantum_tasks",
            {"quantumTasks": [summary]},
            {"filters": [{"name": "quantumTaskArn", "operator": "EQUAL", "values": [arn]}]},
        )
        stub.add_response(
            "get_quantum_task",
            {**summary, "status": "FAILED", "failureReason": "why", "deviceParameters": "{}"},
            {"quantumTaskArn": arn},
        )
        task = TaskContext(dispatch_id="d", node_id=0, name="bell", executor_name="braket")
        task.state["program"] = Circuit().h(0).cnot(0, 1)
        await executor._create(task)
        assert task.state["arn"] == arn and json.loads(task.job_handle or "{}")["arn"] == arn
        assert await executor.cancel_quantum_tasks([arn]) is True
        assert await executor._failure_reason(arn) == "why"
        stub.assert_no_pending_responses()


# -- Covalent's options ------------------------------------------------------------------


def covalent_style_electron(bucket: str) -> dict:
    """An electron written for Covalent's Braket plugin: it reads its device from the job."""
    import os

    from braket.aws import AwsQuantumTask, AwsSession
    from braket.circuits import Circuit

    # (AwsDevice(arn).run(...) does the same after a GetDevice call the test double lacks.)
    device = os.environ["AMZN_BRAKET_DEVICE_ARN"]
    circuit = Circuit().h(0).cnot(0, 1)
    task = AwsQuantumTask.create(AwsSession(), device, circuit, (bucket, "covalent-style"), 20)
    return {
        "device": os.environ["AMZN_BRAKET_DEVICE_ARN"],
        "counts": dict(task.result().measurement_counts),
    }


def test_covalents_braket_options_run_the_electron_as_a_hybrid_one(moto, braket, workdir):
    executor = make(
        moto,
        braket,
        workdir,
        device_arn="local:braket_sv",
        quantum_device=SV1,
        ecr_image_uri="123.dkr.ecr.us-east-1.amazonaws.com/covalent:latest",
        classical_device="ml.m5.large",
        storage=30,
        braket_job_execution_role_name="CovalentBraketJobsExecutionRole",
        cache_dir="/tmp/unused",
        time_limit=120,
    )
    assert executor.hybrid and executor.device_arn == SV1
    # The electron's own results are the user's data: they go to a bucket of their own, which
    # the executor does not clean up, and which the later tests' leftover checks do not look at.
    users = "users-own-results"
    moto.client("s3").create_bucket(Bucket=users)
    node = finished_task(dispatch_task(covalent_style_electron, executor, users), timeout=120)
    assert node.status is ct.Status.COMPLETED, node.error
    assert node.output["device"] == SV1
    assert sum(node.output["counts"].values()) == 20


def test_time_limit_stops_a_hybrid_electron_and_its_quantum_tasks(moto, braket, workdir):
    control(braket, run_seconds=600)
    executor = make(moto, braket, workdir, hybrid=True, time_limit=3)
    node = finished_task(dispatch_task(variational_loop, executor, SV1, BUCKET), timeout=120)
    assert node.status is ct.Status.FAILED
    assert "time_limit of 3 s" in node.error
    wait_until(lambda: unfinished(braket) == [], 30)


# -- re-attaching after the dispatcher died ---------------------------------------------


def test_a_quantum_task_outlives_a_killed_dispatcher_and_its_result_arrives(moto, braket, workdir):
    control(braket, run_seconds=4)
    created = braket.calls["CreateQuantumTask:new"]
    dispatch_id = dispatch_task(bell, make(moto, braket, workdir))
    handle = wait_until(lambda: ct.get_result(dispatch_id).get_node(0).job_handle, 60)
    kill_service()
    assert braket.tasks[handle["arn"]].status not in ("CANCELLING", "CANCELLED")
    node = finished_task(dispatch_id)  # waiting starts the next dispatcher
    assert node.status is ct.Status.COMPLETED, node.error
    assert node.output["task_arn"] == handle["arn"] and node.reattached_by
    assert braket.calls["CreateQuantumTask:new"] - created == 1
    assert_nothing_left(moto, braket, workdir)


def test_a_quantum_task_created_before_its_arn_was_stored_is_not_created_twice(
    moto, braket, workdir
):
    """The dispatcher died between CreateQuantumTask and storing the ARN: the next creates it
    again with the same client token, and Braket gives back the same quantum task."""
    dispatch_id = str(uuid.uuid4())
    created = braket.calls["CreateQuantumTask:new"]

    def circuit() -> Circuit:  # nested: pickled by value for the program-building worker
        from braket.circuits import Circuit

        return Circuit().h(0).cnot(0, 1)

    async def attempt(executor: BraketExecutor, stored: list[str] | None) -> Any:
        task = task_context(dispatch_id, 1, circuit, [], stored)
        assert task.outcome is None
        for stage in (executor.pickle, executor.upload, executor.provision, executor.run):
            await stage(task)
        return task

    async def scenario() -> None:
        first = await attempt(make(moto, braket, workdir), None)  # its ARN never stored
        fresh = make(moto, braket, workdir)
        stored: list[str] = []
        unknown = task_context(dispatch_id, 1, circuit, [], stored)
        assert await fresh.reattach(unknown, None) is False
        again = await attempt(fresh, stored)  # started anew, as the dispatcher does
        assert [json.loads(h)["arn"] for h in stored] == [first.state["arn"]]
        await fresh.fetch(again)
        assert again.outcome is not None and again.outcome.ok, again.outcome
        await fresh.cleanup(again)

    asyncio.run(scenario())
    assert braket.calls["CreateQuantumTask:new"] - created == 1
    assert_nothing_left(moto, braket, workdir)


def test_a_quantum_task_braket_has_forgotten_is_reported_lost(moto, braket, workdir):
    async def scenario() -> None:
        executor = make(moto, braket, workdir)
        task = task_context(str(uuid.uuid4()), 0, bell, [])
        handle = {"region": REGION, "arn": f"arn:aws:braket:{REGION}:123456789012:quantum-task/x"}
        with pytest.raises(JobLostError, match="no longer knows quantum task"):
            await executor.reattach(task, json.dumps(handle))

    asyncio.run(scenario())
