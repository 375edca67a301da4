"""AWS Batch executor benchmarks under the Batch lifecycle **test double** (and moto for S3,
CloudWatch Logs, IAM), all on 127.0.0.1.

Cancel latency: from ``ct.cancel()`` to the job's process dead (state Z counts).
Throughput: 50 short tasks, total time, and how many describe_jobs calls the double served.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import covalent_core as ct
from covalent_core.sdk.processes import is_dead

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import credentials_file, latency_ms, standalone, wait_for_handle  # noqa: E402


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


def _noop(i: int) -> int:
    return i


def measure(cancel_runs: int = 10, tasks: int = 50) -> dict[str, Any]:
    """Run both measurements; returns JSON-ready numbers."""
    import os

    from covalent_awsbatch import AWSBatchExecutor
    from pytest_covalent_servers.aws import CREDENTIALS, REGION, BatchDouble, MotoServer

    os.environ.update(CREDENTIALS, AWS_DEFAULT_REGION=REGION)
    moto = MotoServer()
    double = BatchDouble(moto, queues=("bench-queue",))
    try:
        moto.client("s3").create_bucket(Bucket="bench")
        executor = AWSBatchExecutor(
            s3_bucket_name="bench",
            batch_queue="bench-queue",
            container_image_uri="bench:latest",
            region=REGION,
            service_endpoints={"s3": moto.url, "logs": moto.url, "batch": double.url},
            container_python=str(Path(sys.executable).absolute()),
            poll_freq=1.0,
            # Explicit keys: the dispatcher service may have started without AWS variables.
            credentials=credentials_file(tempfile.mkdtemp(prefix="covalent-bench-aws-")),
        )
        sleeper = ct.electron(_sleep, executor=executor)
        noop = ct.electron(_noop, executor=executor)

        @ct.lattice
        def one_sleeper() -> None:
            return sleeper(600)

        @ct.lattice
        def many(n: int) -> list[int]:
            return [noop(i) for i in range(n)]

        ct.get_result(ct.dispatch(many)(1), wait=True, timeout=120)  # definitions, clients
        samples = []
        for _ in range(cancel_runs):
            dispatch_id = ct.dispatch(one_sleeper)()
            handle = wait_for_handle(dispatch_id)
            job = double.jobs[handle["job_id"]]
            while job.proc is None:
                time.sleep(0.005)
            start = time.perf_counter()
            ct.cancel(dispatch_id)
            while not is_dead(job.proc.pid):
                time.sleep(0.001)
            samples.append(time.perf_counter() - start)
            ct.get_result(dispatch_id, wait=True, timeout=120)
        before = double.calls["describejobs"]
        start = time.perf_counter()
        result = ct.get_result(ct.dispatch(many)(tasks), wait=True, timeout=900)
        seconds = time.perf_counter() - start
        return {
            "cancel_to_job_process_dead_ms": latency_ms(samples),
            "short_tasks": {
                "tasks": tasks,
                "status": str(result.status),
                "seconds": seconds,
                "poll_freq": 1.0,
                "describe_jobs_calls": double.calls["describejobs"] - before,
            },
        }
    finally:
        double.stop()
        moto.stop()


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Table rows: (benchmark, result, target)."""
    c, t = result["cancel_to_job_process_dead_ms"], result["short_tasks"]
    return [
        (
            "aws batch (test double): cancel -> process dead",
            f"p50 {c['p50']:.0f} ms, p95 {c['p95']:.0f} ms",
            "",
        ),
        (
            f"aws batch (test double): {t['tasks']} short tasks (poll {t['poll_freq']:g} s)",
            f"{t['seconds']:.1f} s; {t['describe_jobs_calls']} describe_jobs calls",
            "batched",
        ),
    ]


if __name__ == "__main__":
    standalone(measure)
