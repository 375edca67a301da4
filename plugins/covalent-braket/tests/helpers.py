"""Making executors against the test double, and asking it what it holds."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from conftest import BUCKET, REGION, SV1
from covalent_braket import BraketExecutor


def make(moto: Any, braket: Any, workdir: Path, **overrides: Any) -> BraketExecutor:
    options: dict[str, Any] = {
        "device_arn": SV1,
        "shots": 100,
        "s3_bucket_name": BUCKET,
        "region": REGION,
        "service_endpoints": {"s3": moto.url, "braket": braket.url},
        "poll_freq": 0.2,
        "workdir": str(workdir),
    }
    options.update(overrides)
    return BraketExecutor(**options)


def unfinished(braket: Any) -> list[str]:
    return [
        f"{t.arn} {t.status}"
        for t in braket.tasks.values()
        if t.status not in ("COMPLETED", "FAILED", "CANCELLED")
    ]


def objects(moto: Any) -> list[str]:
    return [o["Key"] for o in moto.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def control(braket: Any, **settings: Any) -> None:
    request = urllib.request.Request(
        f"{braket.url}/control", data=json.dumps(settings).encode(), method="POST"
    )
    urllib.request.urlopen(request).read()
