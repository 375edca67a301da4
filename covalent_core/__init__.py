"""covalent-core: Covalent's programming model with cancellation you can rely on.

import covalent_core as ct

@ct.electron
def add(x, y):
    return x + y

@ct.lattice
def workflow(a, b):
    return add(a, b)

dispatch_id = ct.dispatch(workflow)(1, 2)
ct.cancel(dispatch_id)            # or cancel(dispatch_id, task_ids=[0])
print(ct.get_result(dispatch_id, wait=True))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    CovalentCoreError,
    DispatchNotFoundError,
    DispatchTimeoutError,
    ExecutorConfigError,
    ExecutorNotFoundError,
    GraphBuildError,
    SerializationError,
    TaskCancelledError,
    TaskNotFoundError,
)
from .status import CancelReason, Stage, Status
from .workflow import Electron, Lattice, electron, lattice, wait

# The rest is imported on first use, so that `covalent-core cancel` starts fast.
_LAZY = {
    "cancel": "api",
    "dispatch": "api",
    "dispatch_sync": "api",
    "get_result": "api",
    "list_dispatches": "api",
    "Executor": "executors.base",
    "TaskContext": "executors.base",
    "TaskOutcome": "executors.base",
    "LocalExecutor": "executors.local",
    "CancelReport": "result",
    "NodeResult": "result",
    "Result": "result",
}

if TYPE_CHECKING:
    from . import executor
    from .api import cancel, dispatch, dispatch_sync, get_result, list_dispatches
    from .executors.base import Executor, TaskContext, TaskOutcome
    from .executors.local import LocalExecutor
    from .result import CancelReport, NodeResult, Result


def __getattr__(name: str) -> Any:
    import importlib

    if name == "executor":
        return importlib.import_module(".executor", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'covalent_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "CancelReason",
    "CancelReport",
    "CovalentCoreError",
    "DispatchNotFoundError",
    "DispatchTimeoutError",
    "Electron",
    "Executor",
    "ExecutorConfigError",
    "ExecutorNotFoundError",
    "GraphBuildError",
    "Lattice",
    "LocalExecutor",
    "NodeResult",
    "Result",
    "SerializationError",
    "Stage",
    "Status",
    "TaskCancelledError",
    "TaskContext",
    "TaskNotFoundError",
    "TaskOutcome",
    "cancel",
    "dispatch",
    "dispatch_sync",
    "electron",
    "executor",
    "get_result",
    "lattice",
    "list_dispatches",
    "wait",
]
