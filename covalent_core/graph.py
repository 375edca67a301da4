"""The transport graph: nodes numbered as Covalent numbers them, and the edges between them.

Node and edge attributes follow Covalent 0.240's ``_TransportGraph``: every node has a
``name``; every edge has an ``edge_name`` (the parameter it feeds, ``node:N`` for the
post-processing node's references, ``!waiting_edge`` for :func:`covalent_core.wait`), and
argument edges also a ``param_type`` (``arg`` or ``kwarg``) and an ``arg_index``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import networkx as nx

PARAMETER_PREFIX = ":parameter:"
LIST_PREFIX = ":electron_list:"
DICT_PREFIX = ":electron_dict:"
SUBLATTICE_PREFIX = ":sublattice:"
POSTPROCESS_NAME = ":postprocess:reconstruct"
WAIT_EDGE_NAME = "!waiting_edge"

KIND_ELECTRON = "electron"
KIND_PARAMETER = "parameter"
KIND_COLLECTION = "collection"
KIND_SUBLATTICE = "sublattice"
KIND_POSTPROCESS = "postprocess"

PARAM_ARG = "arg"
PARAM_KWARG = "kwarg"
PARAM_WAIT = "wait"

# Node names are stored in a column of this width; longer parameter names are cut.
MAX_NAME = 255


def parameter_name(value: Any) -> str:
    """Covalent's name for a parameter node: ``:parameter:`` and ``str(value)``."""
    try:
        text = str(value)
    except Exception:  # a value whose __str__ raises still gets a node
        text = f"<{type(value).__name__}>"
    name = PARAMETER_PREFIX + text
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 3] + "..."


@dataclass
class Node:
    """One node of a transport graph, as built from a lattice function."""

    node_id: int
    name: str
    kind: str
    function: Any = None
    value: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    """``executor``, ``timeout`` and ``hooks`` of the node (None: the lattice's default)."""

    @property
    def executor(self) -> Any:
        """The node's executor: an instance, a short name, or None for the default."""
        return self.metadata.get("executor")

    @property
    def timeout(self) -> float | None:
        """Seconds after which the node is stopped, or None."""
        return self.metadata.get("timeout")

    @property
    def hooks(self) -> Any:
        """The task's environment (a :class:`~covalent_core._workflow.deps.TaskEnvironment`),
        or None."""
        return self.metadata.get("hooks")


@dataclass(slots=True)
class Edge:
    """An input of ``child`` taken from ``parent``'s output (or, for a wait, an ordering)."""

    parent: int
    child: int
    edge_name: str
    param_type: str = PARAM_WAIT  # "arg", "kwarg" or "wait"
    arg_index: int | None = None


@dataclass
class TransportGraph:
    """Nodes in id order and the edges between them, in the order they were added."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def add_node(self, name: str, kind: str, **attrs: Any) -> int:
        """Add a node with the next id (ids count up from 0, in call order) and return the id."""
        node_id = len(self.nodes)
        self.nodes.append(Node(node_id=node_id, name=name, kind=kind, **attrs))
        return node_id

    def add_edge(
        self,
        parent: int,
        child: int,
        edge_name: str,
        param_type: str = PARAM_WAIT,
        arg_index: int | None = None,
    ) -> None:
        """Connect ``parent``'s output to the input ``edge_name`` of ``child``."""
        self.edges.append(Edge(parent, child, edge_name, param_type, arg_index))

    # -- Covalent's accessors -------------------------------------------------------------

    def get_node_value(self, node_id: int, key: str) -> Any:
        """A node's attribute by Covalent's key: ``name``, ``function``, ``value``, ``metadata``."""
        node = self.nodes[node_id]
        if key == "metadata":  # its task environment in Covalent's layout, as data
            hooks = node.hooks
            layout = {"deps": {}, "call_before": [], "call_after": []}
            return {**node.metadata, "hooks": hooks.covalent_hooks() if hooks else layout}
        if key in ("name", "function", "value"):
            return getattr(node, key)
        raise KeyError(
            f"node {node_id} of a built graph has no {key!r}; built graphs know name, function, "
            "value and metadata (results hold status and output: ct.get_result)"
        )

    def get_dependencies(self, node_id: int) -> list[int]:
        """The ids of the nodes ``node_id`` takes inputs from (or waits for)."""
        return list(dict.fromkeys(e.parent for e in self.edges if e.child == node_id))

    def get_edge_data(self, parent: int, child: int) -> dict[int, dict[str, Any]] | None:
        """Covalent's ``{key: edge attributes}`` for every edge from ``parent`` to ``child``."""
        found = [edge_attributes(e) for e in self.edges if e.parent == parent and e.child == child]
        return dict(enumerate(found)) or None

    @property
    def _graph(self) -> nx.MultiDiGraph:
        """The graph as Covalent exposes it: a networkx MultiDiGraph with its attributes."""
        import networkx as nx

        graph = nx.MultiDiGraph()
        for node in self.nodes:
            graph.add_node(node.node_id, name=node.name)
        for edge in self.edges:
            graph.add_edge(edge.parent, edge.child, **edge_attributes(edge))
        return graph

    def to_networkx(self) -> nx.MultiDiGraph:
        """The graph as networkx sees it, for traversals."""
        return self._graph


def edge_attributes(edge: Edge) -> dict[str, Any]:
    """An edge's attributes as Covalent records them (wait edges carry only their name)."""
    if edge.param_type == PARAM_WAIT:
        return {"edge_name": edge.edge_name}
    return {"edge_name": edge.edge_name, "param_type": edge.param_type, "arg_index": edge.arg_index}


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
