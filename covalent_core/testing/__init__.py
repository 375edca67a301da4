"""Testing tools for executor plugins: the conformance suite every executor must pass.

    from covalent_core.testing import ExecutorConformance

See :mod:`covalent_core.testing.suite` and ``docs/writing-an-executor.md``.
"""

from .env import isolated_store
from .suite import (
    ExecutorConformance,
    dispatch_task,
    finished_task,
    marker_processes,
    wait_until,
)

__all__ = [
    "ExecutorConformance",
    "dispatch_task",
    "finished_task",
    "isolated_store",
    "marker_processes",
    "wait_until",
]
