"""Slurm's job states, translated: which are still active, and how a job ended, in words.

The states and exit codes come from ``squeue``, ``sacct`` or ``scontrol``; a job that left
the queue has ended, and :func:`describe_end` says how in a message a user can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIVE = frozenset(
    {
        "PENDING",
        "RUNNING",
        "SUSPENDED",
        "COMPLETING",
        "CONFIGURING",
        "RESIZING",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESV_DEL_HOLD",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "SPECIAL_EXIT",
    }
)
"""Job states in which the job still holds (or waits for) its resources."""


@dataclass(frozen=True)
class JobEnd:
    """How a job ended: Slurm's state, the exit code and the signal that ended it."""

    state: str
    exit_code: int = 0
    signal: int = 0
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED" and self.exit_code == 0


def parse_exit(text: str) -> tuple[int, int]:
    """Slurm's ``ExitCode=code:signal``."""
    code, _, sig = text.partition(":")
    try:
        return int(code or 0), int(sig or 0)
    except ValueError:
        return 0, 0


def parse_scontrol(text: str) -> dict[str, str]:
    """``scontrol show job -o`` output as a dict (values without spaces)."""
    fields: dict[str, str] = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep and key not in fields:
            fields[key] = value
    return fields


def describe_end(job_id: str, end: JobEnd) -> str:
    """A node error a user can act on, for a job that did not complete successfully."""
    where = f"Slurm job {job_id}"
    messages = {
        "TIMEOUT": f"{where} hit its time limit (TIMEOUT); raise options['time']",
        "OUT_OF_MEMORY": f"{where} ran out of memory (OUT_OF_MEMORY); raise options['mem']",
        "NODE_FAIL": f"{where} failed because its node failed (NODE_FAIL)",
        "PREEMPTED": f"{where} was preempted by a higher-priority job (PREEMPTED)",
        "BOOT_FAIL": f"{where} failed because its node could not boot (BOOT_FAIL)",
        "DEADLINE": f"{where} missed its deadline (DEADLINE)",
        "CANCELLED": f"{where} was cancelled outside covalent (CANCELLED by scancel or an admin)",
    }
    if end.state in messages:
        return messages[end.state]
    if end.signal:
        return f"{where} was killed by signal {end.signal} ({end.state})"
    if end.state == "LOST":
        return f"{where} is no longer known to Slurm and left no result"
    return f"{where} ended {end.state} with exit code {end.exit_code}"
