"""Covalent's ``ct.executor`` namespace: its executor bases, and installed executors by class name.

``ct.executor.SlurmExecutor`` is the installed covalent-slurm class, as in Covalent;
``ct.executor.BaseExecutor`` / ``AsyncBaseExecutor`` (also in ``covalent_core.executor.base``)
are Covalent's interface for writing an executor. covalent-core's own executor API, in which
the built-in and packaged executors are written, is :mod:`covalent_core.sdk`.
"""

from __future__ import annotations

from typing import Any

from . import base
from .base import AsyncBaseExecutor, BaseExecutor


def _installed() -> dict[str, Any]:
    from ..plugins import registry

    return {info.cls.__name__: info.cls for info in registry().executors.values()}


class _ExecutorManager:
    """Covalent's ``ct.executor._executor_manager``: the installed executors."""

    def list_executors(self, regenerate: bool = False, print_names: bool = True) -> list[str]:
        """The installed executors' short names (printed, numbered, unless ``print_names`` is
        False); ``regenerate`` is accepted: plugins are found anew each time."""
        from ..plugins import registry

        names = sorted(registry().executors)
        if print_names:
            for number, name in enumerate(names, start=1):
                print(f"{number}. {name}")
        return names


_executor_manager = _ExecutorManager()


def __getattr__(name: str) -> Any:
    installed = _installed()
    if name in installed:
        return installed[name]
    raise AttributeError(
        f"no installed executor class {name!r}; installed: {', '.join(sorted(installed))}. "
        "Install its plugin package, e.g. `pip install covalent-slurm`."
    )


def __dir__() -> list[str]:
    return sorted({*_installed(), "AsyncBaseExecutor", "BaseExecutor", "base"})


__all__ = ["AsyncBaseExecutor", "BaseExecutor", "base"]
