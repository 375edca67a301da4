"""Covalent's ``covalent._workflow.transport``: the transport graph (``_TransportGraph``) and
:class:`~.transportable_object.TransportableObject`."""

from ..graph import TransportGraph
from .transportable_object import TransportableObject

_TransportGraph = TransportGraph

__all__ = ["TransportableObject", "_TransportGraph"]
