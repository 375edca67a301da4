"""Covalent's ``covalent._dispatcher_plugins``: :class:`~.local.LocalDispatcher`."""

from .local import LocalDispatcher

__all__ = ["LocalDispatcher"]
