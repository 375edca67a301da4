"""Node ids, names and edges are Covalent's, so Covalent users' task ids keep their meaning.

Every expected graph below was printed by real Covalent 0.240 (``lattice.build_graph()``, then
``lattice.transport_graph._graph``) for the same lattice; ``tests/compat`` checks hundreds of
random programs the same way.
"""

from __future__ import annotations

import re

import pytest

import covalent_core as ct


@ct.electron
def f(*args, **kwargs):
    return None


@ct.electron
def g(a, b=2, *, c=3):
    return None


@ct.lattice
def inner(x):
    return f(x)


def _graph(lattice, *args, **kwargs):
    graph = lattice.build_graph(*args, **kwargs)
    nodes = [(n.node_id, re.sub(r" at 0x[0-9a-f]+", "", n.name)) for n in graph.nodes]
    edges = sorted((e.parent, e.child, e.edge_name) for e in graph.edges)
    return nodes, edges


def test_electron_node_first_then_its_parameters_then_the_result_node():
    @ct.lattice
    def flow1(a):
        x = f(a, 2, key="v")
        return f(x, 3)

    nodes, edges = _graph(flow1, 1)
    assert nodes == [
        (0, "f"),
        (1, ":parameter:1"),
        (2, ":parameter:2"),
        (3, ":parameter:v"),
        (4, "f"),
        (5, ":parameter:3"),
        (6, ":postprocess:reconstruct"),
    ]
    assert edges == [
        (0, 4, "arg[0]"),
        (0, 6, "!waiting_edge"),
        (1, 0, "arg[0]"),
        (2, 0, "arg[1]"),
        (3, 0, "key"),
        (4, 6, "node:4"),
        (4, 6, "retval"),
        (5, 4, "arg[1]"),
    ]


def test_a_dict_is_fed_by_a_list_of_keys_and_a_list_of_values():
    @ct.lattice
    def flow2():
        a = f(1)
        return f([a, 5], {"k": a, "j": 6})

    nodes, edges = _graph(flow2)
    assert nodes == [
        (0, "f"),
        (1, ":parameter:1"),
        (2, "f"),
        (3, ":electron_list:"),
        (4, ":parameter:5"),
        (5, ":electron_dict:"),
        (6, ":electron_list:"),
        (7, ":parameter:k"),
        (8, ":parameter:j"),
        (9, ":electron_list:"),
        (10, ":parameter:6"),
        (11, ":postprocess:reconstruct"),
    ]
    assert (6, 5, "keys") in edges and (9, 5, "values") in edges
    assert (0, 9, "arg[0]") in edges  # the output reaches the dict through its values list


def test_a_sublattice_takes_the_lattice_and_its_parents_metadata_first():
    @ct.lattice
    def flow3():
        pair = f(1)
        return ct.electron(inner)(pair[0])

    nodes, edges = _graph(flow3)
    assert [name for _, name in nodes[:5]] == [
        "f",
        ":parameter:1",
        ":f.__getitem__",
        ":parameter:0",
        ":sublattice:inner",
    ]
    assert nodes[5] == (5, ":parameter:<covalent_core._workflow.lattice.Lattice object>")
    assert nodes[6][1].startswith(':parameter:{"executor": ')
    assert nodes[7] == (7, ":postprocess:reconstruct")
    assert (5, 4, "sub") in edges and (6, 4, "json_parent_metadata") in edges
    assert (2, 4, "arg[2]") in edges


def test_keyword_arguments_are_numbered_in_the_signatures_order():
    @ct.lattice
    def flow4():
        return g(c=f(), a=1, b=(2, 3))

    nodes, edges = _graph(flow4)
    assert nodes == [
        (0, "f"),
        (1, "g"),
        (2, ":parameter:1"),
        (3, ":electron_list:"),
        (4, ":parameter:2"),
        (5, ":parameter:3"),
        (6, ":postprocess:reconstruct"),
    ]
    assert (0, 1, "c") in edges and (2, 1, "a") in edges and (3, 1, "b") in edges


def test_unpacking_and_arithmetic_are_named_as_covalent_names_them():
    @ct.lattice
    def flow5():
        p, q = f()
        return 2 * p + q

    nodes, _ = _graph(flow5)
    assert nodes == [
        (0, "f"),
        (1, ":f()[0]"),
        (2, ":parameter:0"),
        (3, ":f()[1]"),
        (4, ":parameter:1"),
        (5, ":f()[0]_*_2"),
        (6, ":parameter:2"),
        (7, ":f()[0]_*_2_+_:f()[1]"),
        (8, ":postprocess:reconstruct"),
    ]


def test_too_many_arguments_is_refused_when_the_graph_is_built():
    @ct.lattice
    def flow():
        return g(1, 2, 3)

    with pytest.raises(ct.GraphBuildError, match=r"g\(\) got too many positional arguments"):
        ct.dispatch(flow)()


def test_iterating_an_output_of_unknown_length_is_a_clear_error():
    @ct.lattice
    def flow():
        return [x for x in f()]

    with pytest.raises(TypeError, match="can only be unpacked into two or more names"):
        flow.build_graph()
