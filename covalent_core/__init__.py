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

from . import _moved
from ._workflow import Electron, Lattice, electron, lattice, wait
from .errors import (
    CovalentCoreError,
    DispatchNotFoundError,
    DispatchTimeoutError,
    ExecutorConfigError,
    ExecutorError,
    ExecutorNotFoundError,
    GraphBuildError,
    SerializationError,
    TaskCancelledError,
    TaskNotFoundError,
)
from .status import CancelReason, Stage, Status

_moved.install()  # old module names (and values pickled under them) still import

# The rest is imported on first use, so that `covalent-core cancel` starts fast.
_LAZY = {
    "cancel": "api",
    "dispatch": "api",
    "dispatch_sync": "api",
    "get_result": "api",
    "list_dispatches": "api",
    "redispatch": "redispatching",
    "get_config": "config",
    "set_config": "config",
    "reload_config": "config",
    "get_context": "context",
    "DepsBash": "_workflow.deps",
    "DepsCall": "_workflow.deps",
    "DepsModule": "_workflow.deps",
    "DepsPip": "_workflow.deps",
    "Lepton": "_workflow.lepton",
    "Executor": "sdk.base",
    "TaskContext": "sdk.base",
    "TaskOutcome": "sdk.base",
    "LocalExecutor": "local.executor",
    "CancelReport": "_results_manager.result",
    "NodeResult": "_results_manager.result",
    "Result": "_results_manager.result",
    "covalent_start": "service.lifecycle",
    "covalent_stop": "service.lifecycle",
    "is_covalent_running": "service.lifecycle",
    "TransportableObject": "_workflow.transportable_object",
    "stop_triggers": "triggers",
}
_MODULES = {
    "executor": ".executor",
    "fs": "._file_transfer.file_transfer",
    "fs_strategies": "._file_transfer.strategies",
    "leptons": "._workflow.lepton",
    "triggers": ".triggers",
    "metadata": "importlib.metadata",
}

# Covalent names that covalent-core does not provide, and what to use instead.
_NOT_PROVIDED = {
    "get_result_manager": "use ct.get_result(dispatch_id): results are read from the store",
}

if TYPE_CHECKING:
    from . import executor, triggers
    from ._file_transfer import file_transfer as fs
    from ._file_transfer import strategies as fs_strategies
    from ._results_manager.result import CancelReport, NodeResult, Result
    from ._workflow import lepton as leptons
    from ._workflow.deps import DepsBash, DepsCall, DepsModule, DepsPip
    from ._workflow.lepton import Lepton
    from ._workflow.transportable_object import TransportableObject
    from .api import cancel, dispatch, dispatch_sync, get_result, list_dispatches
    from .config import get_config, reload_config, set_config
    from .context import get_context
    from .local.executor import LocalExecutor
    from .redispatching import redispatch
    from .sdk.base import Executor, TaskContext, TaskOutcome
    from .service.lifecycle import covalent_start, covalent_stop, is_covalent_running
    from .triggers import stop_triggers


def _not_provided(name: str, advice: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"ct.{name} is not provided by covalent-core: {advice}")

    refuse.__name__ = name
    return refuse


def __getattr__(name: str) -> Any:
    import importlib

    if name in _MODULES:
        target = _MODULES[name]
        return importlib.import_module(target, __name__ if target.startswith(".") else None)
    if name in _NOT_PROVIDED:
        return _not_provided(name, _NOT_PROVIDED[name])
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
    "DepsBash",
    "DepsCall",
    "DepsModule",
    "DepsPip",
    "DispatchNotFoundError",
    "DispatchTimeoutError",
    "Electron",
    "Executor",
    "ExecutorConfigError",
    "ExecutorError",
    "ExecutorNotFoundError",
    "GraphBuildError",
    "Lattice",
    "Lepton",
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
    "TransportableObject",
    "cancel",
    "covalent_start",
    "covalent_stop",
    "dispatch",
    "dispatch_sync",
    "electron",
    "executor",
    "fs",
    "fs_strategies",
    "get_config",
    "get_context",
    "get_result",
    "is_covalent_running",
    "lattice",
    "leptons",
    "list_dispatches",
    "redispatch",
    "reload_config",
    "set_config",
    "status",
    "stop_triggers",
    "triggers",
    "wait",
]
