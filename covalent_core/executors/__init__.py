"""The public API for writing an executor plugin.

Everything a plugin needs is importable from here: the base class and task context, the
hook marker, helpers for local process groups, a pool of warm worker processes for running
user code locally, and the path of the standalone task runner
(copy it to a resource that has only Python and cloudpickle).
"""

from pathlib import Path

from ..hookspecs import hookimpl
from . import runner as _runner
from .base import CLOUDPICKLE_PROBE, Executor, TaskContext, TaskOutcome, interpreter_error
from .polling import BatchedPoller, shared_poller, wait_until_gone
from .pool import WorkerPool
from .processes import ProcessHandle, describe_exit, kill_group

RUNNER_PATH = Path(_runner.__file__)
"""``runner.py``: ``python runner.py PAYLOAD OUTCOME`` runs one task; stdlib + cloudpickle."""

__all__ = [
    "CLOUDPICKLE_PROBE",
    "RUNNER_PATH",
    "BatchedPoller",
    "Executor",
    "ProcessHandle",
    "TaskContext",
    "TaskOutcome",
    "WorkerPool",
    "describe_exit",
    "hookimpl",
    "interpreter_error",
    "kill_group",
    "shared_poller",
    "wait_until_gone",
]
