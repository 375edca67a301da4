"""Braket quantum-task statuses, translated: which are final, and a failed task in words."""

from __future__ import annotations

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
"""Statuses the Braket SDK treats as final: the task holds no place in a device's queue."""


def describe_failure(arn: str, status: str, reason: str | None) -> str:
    """A node error for a quantum task that did not complete."""
    if status == "CANCELLED":
        return f"quantum task {arn} was cancelled outside covalent (CANCELLED)"
    return f"quantum task {arn} {status}: {reason or 'no reason given'}"
