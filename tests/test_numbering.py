"""Node ids are assigned as Covalent assigns them, so Covalent users' task ids keep meaning."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import covalent_core as ct


@ct.electron
def f(*args, **kwargs):
    return None


def _names(lattice, *args, **kwargs):
    graph, _ = lattice.build_graph(*args, **kwargs)
    return [(n.node_id, n.name) for n in graph.nodes]


def test_electron_node_first_then_parameters_in_call_order():
    @ct.lattice
    def flow(a):
        x = f(a, 2, key="v")
        return f(x, 3)

    assert _names(flow, 1) == [
        (0, "f"),
        (1, ":parameter:1"),
        (2, ":parameter:2"),
        (3, ":parameter:v"),
        (4, "f"),
        (5, ":parameter:3"),
    ]


def test_collections_get_a_node_before_their_items():
    @ct.lattice
    def flow():
        a = f(1)
        return f([a, 5], {"k": a, "j": 6})

    assert _names(flow) == [
        (0, "f"),
        (1, ":parameter:1"),
        (2, "f"),
        (3, ":electron_list:"),
        (4, ":parameter:5"),
        (5, ":electron_dict:"),
        (6, ":parameter:6"),
    ]


def test_sublattice_and_indexing_nodes():
    @ct.lattice
    def inner(x):
        return f(x)

    @ct.lattice
    def flow():
        pair = f(1)
        return ct.electron(inner)(pair[0])

    assert _names(flow) == [
        (0, "f"),
        (1, ":parameter:1"),
        (2, ":f.__getitem__"),
        (3, ":parameter:0"),
        (4, ":sublattice:inner"),
    ]


@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=20))
def test_ids_are_consecutive_in_call_order(arities):
    @ct.lattice
    def flow():
        last = None
        for arity in arities:
            args = [last, *list(range(arity))] if last is not None else list(range(arity))
            last = f(*args)
        return last

    graph, _ = flow.build_graph()
    assert [n.node_id for n in graph.nodes] == list(range(len(graph.nodes)))
    electrons = [n for n in graph.nodes if n.name == "f"]
    assert len(electrons) == len(arities)
    # Each electron is followed by exactly its own new parameter nodes.
    expected = 0
    for i, arity in enumerate(arities):
        assert electrons[i].node_id == expected
        expected += 1 + arity
