"""Big values as files: written once under the data directory, referenced from the store.

A pickled input or output above :data:`~covalent_core.sdk.runner.BIG_VALUE` bytes is
not kept in the database and does not pass through the dispatcher service: a local task
writes it to ``<data dir>/values/<dispatch id>/`` itself and its outcome carries a small
reference (see :mod:`covalent_core.sdk.runner`); tasks on this machine read their
arguments from those files; clients read them when a value is asked for. Values of tasks on
other machines arrive through the service (their executor fetches them) and are written
here once they do.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from . import config
from .permissions import private_dir

# The format itself is the runner's, which runs alone on machines without covalent-core.
from .sdk.runner import BIG_VALUE, VALUE_REF, is_value_ref, read_value, value_ref_path, write_value

__all__ = [
    "BIG_VALUE",
    "VALUES",
    "VALUE_REF",
    "discard_values",
    "is_value_ref",
    "keep_big_text",
    "read_text",
    "read_value",
    "store_big",
    "value_ref_path",
    "values_dir",
    "write_value",
]


VALUES = "values"  # under the data directory: one directory per dispatch


def values_dir(dispatch_id: str) -> Path:
    """The directory of a dispatch's big values (created owner-only)."""
    return private_dir(private_dir(config.data_dir() / VALUES) / dispatch_id)


def discard_values(dispatch_id: str) -> None:
    """Remove a dispatch's big values (one that was not stored after all)."""
    shutil.rmtree(config.data_dir() / VALUES / dispatch_id, ignore_errors=True)


def store_big(dispatch_id: str, name: str, data: bytes | None) -> bytes | None:
    """``data`` as it should be stored: a reference once it is big, else itself."""
    if data is None or is_value_ref(data) or len(data) <= BIG_VALUE:
        return data
    return write_value(str(values_dir(dispatch_id)), name, data)


def keep_big_text(path: Path, dispatch_id: str, name: str) -> str:
    """A task's output stream from ``path``: its text, or once it is big, a reference to it
    (the file is moved among the dispatch's values, never read here)."""
    size = path.stat().st_size
    if size <= BIG_VALUE:
        return path.read_bytes().decode(errors="replace")
    target = values_dir(dispatch_id) / name
    os.replace(path, target)
    return (VALUE_REF + json.dumps({"path": str(target), "size": size}).encode()).decode()


def read_text(text: str | None) -> str | None:
    """A stored output stream: ``text``, or the content of the file it references."""
    if text is None or not is_value_ref(text.encode()[: len(VALUE_REF)]):
        return text
    return read_value(text.encode()).decode(errors="replace")
