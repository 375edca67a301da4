"""Covalent's ``covalent._workflow.depspip``: :class:`~.deps.DepsPip`."""

from .deps import DepsPip

__all__ = ["DepsPip"]
