"""Quantum programs an electron may return, and the result an electron gets back."""

from __future__ import annotations

import contextvars
from typing import Any

from braket.aws import AwsSession
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


def program_source(function: Any, *args: Any, **kwargs: Any) -> str:
    """Run the electron and return its program as OpenQASM source: plain text, which the
    dispatcher reads without unpickling anything of the user's. Runs in a build worker."""
    program = as_program(function(*args, **kwargs))
    if isinstance(program, Circuit):
        from braket.circuits.serialization import IRType

        return program.to_ir(IRType.OPENQASM).source
    return program.source


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


CLIENT_TOKEN: contextvars.ContextVar[str] = contextvars.ContextVar("braket_client_token")


class IdempotentSession(AwsSession):
    """Creates quantum tasks with the client token in :data:`CLIENT_TOKEN`.

    Braket returns the quantum task it already created for a token instead of a second one,
    so a task created again after the dispatcher died before storing its ARN is the same.
    """

    def create_quantum_task(self, **boto3_kwargs: Any) -> str:
        token = CLIENT_TOKEN.get(None)
        if token is not None:
            boto3_kwargs.setdefault("clientToken", token)
        return str(super().create_quantum_task(**boto3_kwargs))
