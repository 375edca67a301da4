"""Covalent's ``covalent._workflow.depsbash``: :class:`~.deps.DepsBash`."""

from .deps import DepsBash

__all__ = ["DepsBash"]
