"""Covalent's ``covalent._workflow.depscall``: :class:`~.deps.DepsCall`."""

from .deps import DepsCall

__all__ = ["DepsCall"]
