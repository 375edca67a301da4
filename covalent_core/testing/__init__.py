"""Testing tools for executor plugins: the conformance suite every executor must pass.

    from covalent_core.testing import ExecutorConformance

See :mod:`covalent_core.testing.suite` and ``docs/writing-an-executor.md``.
"""

from .suite import ExecutorConformance, marker_processes, wait_until

__all__ = ["ExecutorConformance", "marker_processes", "wait_until"]
