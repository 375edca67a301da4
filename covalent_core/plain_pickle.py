"""Reading pickles made by processes that ran user code, without running anything.

A task's outcome and a sublattice's graph come back as pickles from a worker, where user code
ran. The dispatcher service reads them with :func:`loads_plain`, which accepts only plain
values (None, bools, numbers, strings, bytes, lists, tuples, dicts, sets): a pickle that names
any class or function is refused, so no object of the user's is ever built, no ``__reduce__``
runs, and a slow or malicious pickle can only fail its own task. The user's objects stay as
bytes inside those values, unpickled by workers and clients only.
"""

from __future__ import annotations

import io
import pickle
from typing import Any


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"refused to load {module}.{name}: only plain values are read here"
        )


def loads_plain(data: bytes) -> Any:
    """Unpickle ``data`` if it holds only plain values; else raise ``UnpicklingError``."""
    return _PlainUnpickler(io.BytesIO(data)).load()
