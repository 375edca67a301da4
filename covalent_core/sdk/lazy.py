"""A module imported when it is first used, not when the plugin that uses it is discovered.

Every command lists the installed plugins, and the dispatcher service loads them all when it
starts: a plugin whose module imports asyncssh or boto3 at the top makes every command and
every cold start wait for them (a tenth of a second or more each), even for users who never
touch that executor. ``asyncssh = deferred("asyncssh")`` reads like the import it stands for.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import Any


class Deferred:
    """Stands for a module; imports it on the first attribute read (thread-safe)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None
        self._lock = threading.Lock()

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            with self._lock:
                if self._module is None:
                    self._module = importlib.import_module(self._name)
                module = self._module
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<deferred module {self._name!r}>"


def deferred(name: str) -> Any:
    """The module ``name``, imported when one of its attributes is first read."""
    return Deferred(name)
