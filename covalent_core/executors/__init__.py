"""The public API for writing an executor plugin.

Everything a plugin needs is importable from here: the base class and task context, the
hook marker, helpers for local process groups (starting one behind a gate that opens once its
handle is stored; waiting for one to exit), a pool of warm worker processes for running user
code locally, and the path of the standalone task runner (copy it to a resource that has only
Python and cloudpickle).
"""

from pathlib import Path

from ..hookspecs import hookimpl
from . import runner as _runner
from .base import CLOUDPICKLE_PROBE, Executor, TaskContext, TaskOutcome, interpreter_error
from .gated import GatedProcess, start_gated
from .polling import BatchedPoller, shared_poller, wait_until_gone
from .pool import WorkerPool, reattach_worker
from .processes import ProcessHandle, describe_exit, kill_group, wait_for_exit

RUNNER_PATH = Path(_runner.__file__)
"""``runner.py``: ``python runner.py PAYLOAD OUTCOME`` runs one task; stdlib + cloudpickle."""

__all__ = [
    "CLOUDPICKLE_PROBE",
    "RUNNER_PATH",
    "BatchedPoller",
    "Executor",
    "GatedProcess",
    "ProcessHandle",
    "TaskContext",
    "TaskOutcome",
    "WorkerPool",
    "describe_exit",
    "hookimpl",
    "interpreter_error",
    "kill_group",
    "reattach_worker",
    "shared_poller",
    "start_gated",
    "wait_for_exit",
    "wait_until_gone",
]
