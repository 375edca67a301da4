"""covalent-slurm: run covalent-core tasks as Slurm jobs, and cancel them with scancel.

from covalent_slurm import SlurmExecutor

@ct.electron(executor=SlurmExecutor(options={"partition": "gpu", "time": "01:00:00"}))
"""

from __future__ import annotations

from covalent_core.sdk import Executor, hookimpl

from .executor import SlurmExecutor

__version__ = "0.1.0"


@hookimpl
def covalent_executor_classes() -> list[type[Executor]]:
    """The executors this plugin provides."""
    return [SlurmExecutor]


__all__ = ["SlurmExecutor"]
