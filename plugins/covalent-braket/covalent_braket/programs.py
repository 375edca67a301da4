"""Quantum programs an electron may return, and the result an electron gets back."""

from __future__ import annotations

from typing import Any

from braket.circuits import Circuit
from braket.ir.openqasm import Program
from braket.tasks import GateModelQuantumTaskResult


def as_program(value: Any) -> Circuit | Program:
    """A Braket Circuit, an OpenQASM Program, or OpenQASM source text, ready to run."""
    if isinstance(value, (Circuit, Program)):
        return value
    if isinstance(value, str) and "OPENQASM" in value.upper():
        return Program(source=value)
    raise TypeError(
        "a braket electron must return a braket Circuit or OpenQASM program text, not "
        f"{type(value).__name__}; for a function that submits its own quantum tasks, use "
        "BraketExecutor(hybrid=True)"
    )


def summary(result: GateModelQuantumTaskResult, arn: str | None, device: str) -> dict[str, Any]:
    """What the electron returns: counts and probabilities, with where they came from."""
    return {
        "measurement_counts": dict(result.measurement_counts),
        "measurement_probabilities": dict(result.measurement_probabilities),
        "measured_qubits": list(result.measured_qubits),
        "shots": int(result.task_metadata.shots),
        "task_arn": arn,
        "device": device,
    }
