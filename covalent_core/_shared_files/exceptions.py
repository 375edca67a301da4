"""Covalent's exceptions (``covalent._shared_files.exceptions``), raised where Covalent raises
them: an unknown dispatch id is a :class:`MissingLatticeRecordError` (and our
:class:`~covalent_core.errors.DispatchNotFoundError`)."""

from ..errors import (
    CommandNotFoundError,
    MissingLatticeRecordError,
    TaskCancelledError,
    TaskRuntimeError,
)

__all__ = [
    "CommandNotFoundError",
    "MissingLatticeRecordError",
    "TaskCancelledError",
    "TaskRuntimeError",
]
