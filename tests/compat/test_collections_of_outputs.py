"""Any nesting of lists, tuples, sets and dicts of outputs reaches the task as values.

Built: every electron whose output sits anywhere in the structure has a path of edges to the
task that receives it (so the task waits for it and a cancel reaches it). Run: the task
receives the values, with tuples and sets as lists, as Covalent passes them.
"""

from __future__ import annotations

import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import covalent_core as ct

OUTPUTS = 4

leaves = st.one_of(
    st.tuples(st.just("out"), st.integers(0, OUTPUTS - 1)),
    st.tuples(st.just("val"), st.integers(-3, 3)),
)
structures = st.recursive(
    leaves,
    lambda kids: st.one_of(
        st.tuples(st.just("list"), st.lists(kids, max_size=3)),
        st.tuples(st.just("tuple"), st.lists(kids, max_size=3)),
        st.tuples(st.just("dict"), st.dictionaries(st.sampled_from("abc"), kids, max_size=3)),
        st.tuples(st.just("set"), leaves),  # one member: a set's order is otherwise arbitrary
    ),
    max_leaves=8,
)


@ct.electron
def ident(i):
    return i * 10


@ct.electron
def receive(value):
    return value


def make(spec, outs):
    """The structure with outputs (inside a lattice) or values (``outs`` a list of ints)."""
    kind, body = spec
    if kind == "out":
        return outs[body]
    if kind == "val":
        return body
    if kind == "list":
        return [make(s, outs) for s in body]
    if kind == "tuple":
        return tuple(make(s, outs) for s in body)
    if kind == "set":
        return {make(body, outs)}
    return {k: make(s, outs) for k, s in body.items()}


def as_covalent_passes(value):
    """Tuples and sets arrive as lists; dicts keep their order."""
    if isinstance(value, (list, tuple, set)):
        return [as_covalent_passes(v) for v in value]
    if isinstance(value, dict):
        return {k: as_covalent_passes(v) for k, v in value.items()}
    return value


def referenced(spec) -> set[int]:
    kind, body = spec
    if kind == "out":
        return {body}
    if kind == "val":
        return set()
    if kind == "set":
        return referenced(body)
    items = body.values() if kind == "dict" else body
    return set().union(*(referenced(s) for s in items)) if items else set()


def flow_for(spec):
    @ct.lattice
    def flow():
        outs = [ident(i) for i in range(OUTPUTS)]
        return receive(make(spec, outs))

    return flow


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(structures)
def test_every_output_in_a_structure_has_a_path_to_the_task(spec):
    flow = flow_for(spec)
    graph = flow.build_graph()
    receiver = next(n.node_id for n in graph.nodes if n.name == "receive")
    electrons = [n.node_id for n in graph.nodes if n.name == "ident"]
    g = graph._graph
    for i in referenced(spec):
        assert nx.has_path(g, electrons[i], receiver), (spec, i)
    # Nothing that is not referenced feeds the task.
    for i in set(range(OUTPUTS)) - referenced(spec):
        assert not nx.has_path(g, electrons[i], receiver)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structures)
def test_task_receives_the_values_as_covalent_passes_them(spec):
    result = ct.dispatch_sync(flow_for(spec), timeout=120)()
    assert result.status is ct.Status.COMPLETED, result
    expected = as_covalent_passes(make(spec, [i * 10 for i in range(OUTPUTS)]))
    assert result.result == expected
