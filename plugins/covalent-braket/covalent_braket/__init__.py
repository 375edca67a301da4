"""covalent-braket: run quantum programs on Amazon Braket from covalent-core, and cancel them.

from covalent_braket import BraketExecutor

@ct.electron(executor=BraketExecutor(
    device_arn="arn:aws:braket:::device/quantum-simulator/amazon/sv1",
    shots=1000, s3_bucket_name="amazon-braket-my-bucket"))
def bell():
    return Circuit().h(0).cnot(0, 1)
"""

from __future__ import annotations

from covalent_core.sdk import Executor, hookimpl

from .executor import BraketExecutor

__version__ = "0.1.0"


@hookimpl
def covalent_executor_classes() -> list[type[Executor]]:
    """The executors this plugin provides."""
    return [BraketExecutor]


__all__ = ["BraketExecutor"]
