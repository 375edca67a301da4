"""Covalent's ``covalent._workflow.depsmodule``: :class:`~.deps.DepsModule`."""

from .deps import DepsModule

__all__ = ["DepsModule"]
