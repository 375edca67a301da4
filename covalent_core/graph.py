"""The transport graph: nodes numbered as Covalent numbers them, and the edges between them."""

from __future__ import annotations

import reprlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import networkx as nx

PARAMETER_PREFIX = ":parameter:"
LIST_PREFIX = ":electron_list:"
DICT_PREFIX = ":electron_dict:"
SUBLATTICE_PREFIX = ":sublattice:"

KIND_ELECTRON = "electron"
KIND_PARAMETER = "parameter"
KIND_COLLECTION = "collection"
KIND_SUBLATTICE = "sublattice"

_short_repr = reprlib.Repr()
_short_repr.maxstring = 60
_short_repr.maxother = 60


def parameter_name(value: Any) -> str:
    """Covalent's name for a parameter node (``:parameter:`` and the value), kept short."""
    if isinstance(value, (str, int, float, bool, complex, type(None))):
        text = str(value)
    else:
        text = _short_repr.repr(value)
    if len(text) > 120:
        text = text[:117] + "..."
    return PARAMETER_PREFIX + text


@dataclass
class Node:
    """One node of a transport graph, as built from a lattice function."""

    node_id: int
    name: str
    kind: str
    function: Any = None
    value: Any = None
    executor: Any = None
    timeout: float | None = None
    label: str = ""
    """Human words for where the node came from, for error messages."""


@dataclass
class Edge:
    """An input of ``child`` taken from ``parent``'s output (or, for ``wait``, an ordering)."""

    parent: int
    child: int
    param_type: str  # "arg", "kwarg" or "wait"
    param_name: str | None = None
    arg_index: int | None = None


@dataclass
class TransportGraph:
    """Nodes in id order and the edges between them."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def add_node(self, name: str, kind: str, **attrs: Any) -> int:
        """Add a node with the next id (ids count up from 0, in call order) and return the id."""
        node_id = len(self.nodes)
        self.nodes.append(Node(node_id=node_id, name=name, kind=kind, **attrs))
        return node_id

    def add_edge(self, parent: int, child: int, param_type: str, **attrs: Any) -> None:
        """Connect ``parent``'s output to an input of ``child``."""
        self.edges.append(Edge(parent=parent, child=child, param_type=param_type, **attrs))

    def to_networkx(self) -> nx.MultiDiGraph:
        """The graph as networkx sees it, for traversals."""
        return edges_to_networkx([n.node_id for n in self.nodes], self.edges)


def edges_to_networkx(node_ids: list[int], edges: list[Edge]) -> nx.MultiDiGraph:
    """Build a MultiDiGraph from node ids and edges."""
    import networkx as nx  # imported when needed: it costs the CLI ~0.1 s of start-up

    graph = nx.MultiDiGraph()
    graph.add_nodes_from(node_ids)
    graph.add_edges_from((e.parent, e.child) for e in edges)
    return graph


def downstream(edges: list[Edge], node_ids: list[int]) -> set[int]:
    """Every node reachable from ``node_ids`` along ``edges`` (not including them).

    A plain breadth-first walk: this is on the path of every ``cancel()``, where importing
    networkx would cost a first cancel about 0.25 s.
    """
    children: dict[int, list[int]] = {}
    for edge in edges:
        children.setdefault(edge.parent, []).append(edge.child)
    seen: set[int] = set()
    queue = deque(node_ids)
    while queue:
        for child in children.get(queue.popleft(), ()):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return seen - set(node_ids)
