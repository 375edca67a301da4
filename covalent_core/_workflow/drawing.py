"""``lattice.draw()``: a picture of the transport graph, with node ids and names.

Written as SVG by this module (networkx lays the nodes out in layers by dependency depth; no
plotting library is needed): nodes coloured by kind, labelled ``id: name``, wait edges
dashed. In a notebook the picture is shown inline; elsewhere the graph is also printed as
text. The SVG file's path is returned.
"""

from __future__ import annotations

import tempfile
from html import escape
from pathlib import Path

import networkx as nx

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
CELL_W, CELL_H = 190, 70  # the grid a node sits in
BOX_W, BOX_H = 176, 30
MARGIN = 16


def _label(node_id: int, name: str) -> str:
    text = f"{node_id}: {name}"
    return text if len(text) <= LABEL_MAX else text[: LABEL_MAX - 1] + "…"


def draw_graph(graph: TransportGraph, title: str, path: str | Path | None = None) -> Path:
    """Draw ``graph`` to an SVG file (``path``, or a new temporary file) and return its path."""
    layers = _layers(graph)
    column: dict[int, int] = {}
    for ids in layers:
        for index, node_id in enumerate(ids):
            column[node_id] = index
    widest = max((len(ids) for ids in layers), default=1)
    width, height = widest * CELL_W + 2 * MARGIN, len(layers) * CELL_H + 2 * MARGIN + 24
    row = {node_id: depth for depth, ids in enumerate(layers) for node_id in ids}

    def centre(node_id: int) -> tuple[float, float]:
        offset = (widest - len(layers[row[node_id]])) * CELL_W / 2
        x = MARGIN + offset + column[node_id] * CELL_W + CELL_W / 2
        return x, MARGIN + 24 + row[node_id] * CELL_H + CELL_H / 2

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="11">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
        f'<text x="{MARGIN}" y="{MARGIN + 12}" font-size="14">{escape(title)}</text>',
    ]
    for edge in graph.edges:
        (x1, y1), (x2, y2) = centre(edge.parent), centre(edge.child)
        dash = ' stroke-dasharray="4 3"' if edge.param_type == PARAM_WAIT else ""
        parts.append(
            f'<line x1="{x1:.0f}" y1="{y1 + BOX_H / 2:.0f}" x2="{x2:.0f}" '
            f'y2="{y2 - BOX_H / 2:.0f}" stroke="#555"{dash} marker-end="url(#arrow)"/>'
        )
    for node in graph.nodes:
        x, y = centre(node.node_id)
        colour = COLOURS.get(node.kind, "#888888")
        parts.append(
            f'<rect x="{x - BOX_W / 2:.0f}" y="{y - BOX_H / 2:.0f}" width="{BOX_W}" '
            f'height="{BOX_H}" rx="6" fill="{colour}"/>'
            f'<text x="{x:.0f}" y="{y + 4:.0f}" text-anchor="middle">'
            f"{escape(_label(node.node_id, node.name))}</text>"
        )
    parts.append("</svg>")
    if path is None:
        with tempfile.NamedTemporaryFile(prefix=f"{title}-", suffix=".svg", delete=False) as fh:
            path = fh.name
    Path(path).write_text("\n".join(parts))
    return Path(path)


def _layers(graph: TransportGraph) -> list[list[int]]:
    """Node ids by dependency depth, each layer in id order."""
    g = nx.DiGraph()
    g.add_nodes_from(node.node_id for node in graph.nodes)
    g.add_edges_from((edge.parent, edge.child) for edge in graph.edges)
    return [sorted(ids) for ids in nx.topological_generations(g)]


def graph_text(graph: TransportGraph, title: str) -> str:
    """The graph as text: each node with its kind and the nodes it takes inputs from."""
    parents: dict[int, list[str]] = {}
    for edge in graph.edges:
        mark = "wait " if edge.param_type == PARAM_WAIT else ""
        parents.setdefault(edge.child, []).append(f"{mark}{edge.parent}")
    lines = [title]
    for node in sorted(graph.nodes, key=lambda n: n.node_id):
        inputs = parents.get(node.node_id)
        after = f"  <- {', '.join(inputs)}" if inputs else ""
        lines.append(f"  {node.node_id}: {node.name} [{node.kind}]{after}")
    return "\n".join(lines)


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
