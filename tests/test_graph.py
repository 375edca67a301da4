"""The cancel path's downstream walk agrees with networkx on random DAGs."""

from __future__ import annotations

import networkx as nx
from hypothesis import given
from hypothesis import strategies as st

from covalent_core.graph import Edge, TransportGraph, downstream


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[int], list[Edge]]:
    size = draw(st.integers(1, 25))
    pairs = draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, size - 1))))
    edges = [Edge(min(a, b), max(a, b), "x", "arg", 0) for a, b in pairs if a != b]
    return list(range(size)), edges


@given(dags(), st.data())
def test_downstream_matches_networkx_descendants(dag, data):
    nodes, edges = dag
    start = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=4))
    graph = TransportGraph(edges=edges)._graph
    graph.add_nodes_from(nodes)
    expected = set().union(*(nx.descendants(graph, n) for n in start)) - set(start)
    assert downstream(edges, start) == expected
