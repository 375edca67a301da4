"""``lattice.draw()``: a picture of the transport graph, with node ids and names.

Drawn with networkx and matplotlib (``pip install covalent-core[draw]``): nodes in layers by
dependency depth, coloured by kind, labelled ``id: name``; wait edges dashed. In a notebook
the picture is shown inline; everywhere it is written to an SVG file whose path is returned.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..graph import (
    KIND_COLLECTION,
    KIND_ELECTRON,
    KIND_PARAMETER,
    KIND_POSTPROCESS,
    KIND_SUBLATTICE,
    PARAM_WAIT,
    TransportGraph,
)

COLOURS = {
    KIND_ELECTRON: "#4c8bf5",
    KIND_PARAMETER: "#c7c7c7",
    KIND_COLLECTION: "#9bd29b",
    KIND_SUBLATTICE: "#f2a93b",
    KIND_POSTPROCESS: "#b48ce0",
}
LABEL_MAX = 28


def _label(node_id: int, name: str) -> str:
    text = f"{node_id}: {name}"
    return text if len(text) <= LABEL_MAX else text[: LABEL_MAX - 1] + "…"


def draw_graph(graph: TransportGraph, title: str, path: str | Path | None = None) -> Path:
    """Draw ``graph`` to an SVG file (``path``, or a new temporary file) and return its path."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        import networkx as nx
    except ImportError as exc:
        raise ImportError(
            f"lattice.draw() needs matplotlib ({exc}); install it with "
            "`pip install covalent-core[draw]`"
        ) from None
    g = nx.DiGraph()
    for node in graph.nodes:
        g.add_node(node.node_id)
    for edge in graph.edges:
        g.add_edge(edge.parent, edge.child)
    for layer, ids in enumerate(nx.topological_generations(g)):
        for node_id in ids:
            g.nodes[node_id]["layer"] = layer
    positions = nx.multipartite_layout(g, subset_key="layer", align="horizontal", scale=-1)
    width = max(6.0, min(40.0, 1.6 * max(_layer_sizes(g).values(), default=1)))
    height = max(
        4.0, min(40.0, 1.3 * (max((d["layer"] for _, d in g.nodes(data=True)), default=0) + 1))
    )
    fig, ax = plt.subplots(figsize=(width, height))
    kinds = {n.node_id: n.kind for n in graph.nodes}
    nx.draw_networkx_nodes(
        g,
        positions,
        ax=ax,
        node_color=[COLOURS.get(kinds[n], "#888888") for n in g.nodes],
        node_size=500,
    )
    solid = [(e.parent, e.child) for e in graph.edges if e.param_type != PARAM_WAIT]
    dashed = [(e.parent, e.child) for e in graph.edges if e.param_type == PARAM_WAIT]
    nx.draw_networkx_edges(g, positions, edgelist=solid, ax=ax, arrows=True)
    nx.draw_networkx_edges(g, positions, edgelist=dashed, ax=ax, arrows=True, style="dashed")
    labels = {n.node_id: _label(n.node_id, n.name) for n in graph.nodes}
    nx.draw_networkx_labels(g, positions, labels=labels, ax=ax, font_size=8)
    ax.set_title(title)
    ax.set_axis_off()
    if path is None:
        with tempfile.NamedTemporaryFile(prefix=f"{title}-", suffix=".svg", delete=False) as fh:
            path = fh.name
    fig.savefig(path, format=Path(path).suffix.lstrip(".") or "svg", bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def _layer_sizes(g: Any) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for _, data in g.nodes(data=True):
        sizes[data["layer"]] = sizes.get(data["layer"], 0) + 1
    return sizes


def show_inline(path: Path) -> bool:
    """Show the SVG in a running notebook; False when not in one."""
    try:
        from IPython import get_ipython
        from IPython.display import SVG, display
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or "IPKernelApp" not in getattr(shell, "config", {}):
        return False
    display(SVG(filename=str(path)))
    return True
