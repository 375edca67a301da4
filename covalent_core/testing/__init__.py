"""Testing tools for executor plugins: the conformance suite every executor must pass.

    from covalent_core.testing import ExecutorConformance

The suite needs pytest (``pip install 'covalent-core[testing]'``); :func:`isolated_store` and
the helpers of :mod:`.observe` do not. See :mod:`covalent_core.testing.suite` and
``docs/writing-an-executor.md``.
"""

from __future__ import annotations

from typing import Any

from .isolation import as_host, isolated_store
from .observe import (
    dispatch_task,
    finished_task,
    kill_service,
    marker_processes,
    peak_rss_mb,
    service_pid,
    stop_all_triggers,
    wait_until,
)

_SUITE = (
    "BasicTier",
    "ContainmentTier",
    "EnvironmentTier",
    "ExecutorConformance",
    "PackingTier",
    "ReattachTier",
    "TimeoutTier",
)


def __getattr__(name: str) -> Any:
    if name not in _SUITE:
        raise AttributeError(f"module 'covalent_core.testing' has no attribute {name!r}")
    try:
        from . import suite
    except ImportError as exc:
        if exc.name != "pytest":
            raise
        raise ImportError(
            "covalent_core.testing's conformance suite needs pytest: "
            "pip install 'covalent-core[testing]'"
        ) from None
    return getattr(suite, name)


__all__ = [
    "BasicTier",
    "ContainmentTier",
    "EnvironmentTier",
    "ExecutorConformance",
    "PackingTier",
    "ReattachTier",
    "TimeoutTier",
    "as_host",
    "dispatch_task",
    "finished_task",
    "isolated_store",
    "kill_service",
    "marker_processes",
    "peak_rss_mb",
    "service_pid",
    "stop_all_triggers",
    "wait_until",
]
