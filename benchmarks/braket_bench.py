"""Braket executor benchmarks under the quantum-task **test double** (moto for S3).

Cancel latency: from ``ct.cancel()`` to the quantum task reported CANCELLED by the service.
Throughput: 20 small circuits, total time, and the API calls the double served.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import covalent_core as ct

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import credentials_file, latency_ms, standalone, wait_for_handle  # noqa: E402


def _bell() -> Any:
    from braket.circuits import Circuit

    return Circuit().h(0).cnot(0, 1)


def _control(url: str, **settings: Any) -> None:
    request = urllib.request.Request(
        f"{url}/control", data=json.dumps(settings).encode(), method="POST"
    )
    urllib.request.urlopen(request).read()


def measure(cancel_runs: int = 10, circuits: int = 20) -> dict[str, Any]:
    """Run both measurements; returns JSON-ready numbers."""
    from covalent_braket import BraketExecutor
    from pytest_covalent_servers.aws import CREDENTIALS, REGION, MotoServer
    from pytest_covalent_servers.braket_double import PREFIX, BraketDouble

    os.environ.update(CREDENTIALS, AWS_DEFAULT_REGION=REGION)
    moto = MotoServer()
    double = BraketDouble(moto)
    scratch = tempfile.mkdtemp(prefix="covalent-braket-bench-")
    try:
        moto.client("s3").create_bucket(Bucket="amazon-braket-bench")
        executor = BraketExecutor(
            device_arn=PREFIX + "sv1",
            shots=100,
            s3_bucket_name="amazon-braket-bench",
            region=REGION,
            service_endpoints={"s3": moto.url, "braket": double.url},
            poll_freq=0.2,
            workdir=scratch,
            credentials=credentials_file(scratch),
        )
        bell = ct.electron(_bell, executor=executor)

        @ct.lattice
        def one() -> Any:
            return bell()

        @ct.lattice
        def many(n: int) -> list[Any]:
            return [bell() for _ in range(n)]

        ct.get_result(ct.dispatch(many)(1), wait=True, timeout=120)  # clients, imports
        _control(double.url, run_seconds=60)
        samples = []
        for _ in range(cancel_runs):
            dispatch_id = ct.dispatch(one)()
            handle = wait_for_handle(dispatch_id)
            task = double.tasks[handle["arn"]]
            start = time.perf_counter()
            ct.cancel(dispatch_id)
            while task.status != "CANCELLED":
                time.sleep(0.001)
            samples.append(time.perf_counter() - start)
            ct.get_result(dispatch_id, wait=True, timeout=120)
        _control(double.url, run_seconds=0.5)
        before = dict(double.calls)
        start = time.perf_counter()
        result = ct.get_result(ct.dispatch(many)(circuits), wait=True, timeout=600)
        seconds = time.perf_counter() - start
        calls = {k: v - before.get(k, 0) for k, v in double.calls.items()}
        return {
            "cancel_to_task_cancelled_ms": {
                **latency_ms(samples),
                "double_cancel_delay_ms": 1e3 * double.cancel_seconds,
            },
            "circuits": {
                "circuits": circuits,
                "status": str(result.status),
                "seconds": seconds,
                "api_calls": calls,
            },
        }
    finally:
        double.stop()
        moto.stop()
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Table rows: (benchmark, result, target)."""
    c, t = result["cancel_to_task_cancelled_ms"], result["circuits"]
    calls = ", ".join(f"{k} {v}" for k, v in sorted(t["api_calls"].items()))
    return [
        (
            "braket (test double): cancel -> task CANCELLED",
            f"p50 {c['p50']:.0f} ms, p95 {c['p95']:.0f} ms "
            f"(the double takes {c['double_cancel_delay_ms']:.0f} ms)",
            "",
        ),
        (
            f"braket (test double): {t['circuits']} small circuits",
            f"{t['seconds']:.1f} s; {calls}",
            "",
        ),
    ]


if __name__ == "__main__":
    standalone(measure)
