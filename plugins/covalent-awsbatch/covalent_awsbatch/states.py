"""AWS Batch job statuses, translated: which have stopped, and how a job ended, in words."""

from __future__ import annotations

from typing import Any

STOPPED = frozenset({"SUCCEEDED", "FAILED"})
"""Statuses after which a job holds nothing any more."""


def describe_end(job_id: str, job: dict[str, Any]) -> str:
    """A node error for a job that left no outcome: its status, reason and exit code."""
    reason = job.get("statusReason") or "no reason given"
    code = job.get("container", {}).get("exitCode")
    message = f"AWS Batch job {job_id} {job.get('status', 'UNKNOWN')}: {reason}"
    return message + (f" (exit code {code})" if code is not None else "")
