"""Installed executor classes by class name, as in Covalent: ``ct.executor.SlurmExecutor``."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    from .plugins import registry

    for info in registry().executors.values():
        if info.cls.__name__ == name:
            return info.cls
    installed = sorted(info.cls.__name__ for info in registry().executors.values())
    raise AttributeError(
        f"no installed executor class {name!r}; installed: {', '.join(installed)}. "
        "Install its plugin package, e.g. `pip install covalent-slurm`."
    )


def __dir__() -> list[str]:
    from .plugins import registry

    return sorted(info.cls.__name__ for info in registry().executors.values())
