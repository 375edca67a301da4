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
