"""The Covalent-style workflow API, end to end through the real store and dispatcher."""

from __future__ import annotations

import time

import covalent_core as ct


@ct.electron
def add(x, y):
    return x + y


@ct.electron
def identity(x):
    return x


@ct.electron
def pair(a, b):
    return (a, b)


@ct.electron
def total(values):
    return sum(values)


@ct.electron
def describe(**kwargs):
    return sorted(kwargs.items())


def test_electron_outside_a_lattice_is_a_plain_call():
    assert add(2, 3) == 5


def test_lattice_outside_dispatch_is_a_plain_call():
    @ct.lattice
    def flow(a):
        return add(a, 1)

    assert flow(1) == 2


def test_dispatch_returns_an_id_at_once_and_get_result_reads_it():
    @ct.lattice
    def flow(a, b):
        return add(add(a, b), 10)

    start = time.monotonic()
    dispatch_id = ct.dispatch(flow)(1, 2)
    assert isinstance(dispatch_id, str)
    assert time.monotonic() - start < 10
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.status is ct.Status.COMPLETED
    assert result.result == 13
    assert result.get_node(0).output == 3


def test_dispatch_sync_args_and_kwargs():
    @ct.lattice
    def flow(a, *, b):
        return pair(a, b=b)

    result = ct.dispatch_sync(flow, timeout=60)(1, b="two")
    assert result.status is ct.Status.COMPLETED
    assert result.result == (1, "two")


def test_lists_and_dicts_of_outputs_and_indexing():
    @ct.lattice
    def flow():
        p = pair(1, 2)
        first = p[0]
        values = [add(1, 1), add(2, 2), first]
        named = describe(x=add(0, 1), y={"k": identity(5)})
        return {"sum": total(values), "named": named}

    result = ct.dispatch_sync(flow, timeout=60)()
    assert result.status is ct.Status.COMPLETED, result
    assert result.result == {"sum": 7, "named": [("x", 1), ("y", {"k": 5})]}


def test_wait_orders_electrons_without_passing_outputs(tmp_path):
    log = tmp_path / "order.txt"

    @ct.electron
    def write(text, delay):
        import time as _t

        _t.sleep(delay)
        with open(log, "a") as fh:
            fh.write(text)
        return text

    @ct.lattice
    def flow():
        first = write("a", 0.5)
        second = write("b", 0.0)
        ct.wait(second, [first])
        return second

    result = ct.dispatch_sync(flow, timeout=60)()
    assert result.status is ct.Status.COMPLETED
    assert log.read_text() == "ab"


def test_sublattice_runs_as_a_dispatch_of_its_own():
    @ct.lattice
    def inner(x):
        return add(x, 100)

    sub = ct.electron(inner)

    @ct.lattice
    def outer(x):
        return add(sub(x), 1)

    result = ct.dispatch_sync(outer, timeout=60)(1)
    assert result.status is ct.Status.COMPLETED, result
    assert result.result == 102
    sub_node = result.get_node(0)  # sub(x) is evaluated before add(...) is called
    assert sub_node.name == ":sublattice:inner"
    inner_result = ct.get_result(sub_node.sub_dispatch_id)
    assert inner_result.parent_dispatch_id == result.dispatch_id
    assert inner_result.result == 101


def test_closures_lambdas_and_main_defined_functions_are_pickled_by_value():
    offset = 41
    square = lambda v: v * v  # noqa: E731

    @ct.electron
    def shifted(x):
        return square(x) + offset

    @ct.lattice
    def flow():
        return shifted(1)

    assert ct.dispatch_sync(flow, timeout=60)().result == 42


def test_result_shows_every_node_with_stdout_times_executor_and_handle():
    @ct.electron
    def talk():
        import subprocess
        import sys

        print("from python")
        sys.stdout.flush()
        subprocess.run(["echo", "from a child"], check=True)
        print("to stderr", file=sys.stderr)
        return 1

    @ct.lattice
    def flow():
        return talk()

    result = ct.dispatch_sync(flow, timeout=60)()
    node = result.get_node(0)
    assert node.status is ct.Status.COMPLETED
    assert node.stdout == "from python\nfrom a child\n"
    assert node.stderr == "to stderr\n"
    assert node.executor == "local"
    assert node.stage == "cleanup"  # the last stage it went through
    assert node.started_at <= node.ended_at
    assert set(node.job_handle) == {
        "host", "pid", "pgid", "start_time", "mark", "cgroup", "parent", "dir", "pack"
    }  # fmt: skip


def test_independent_tasks_run_concurrently():
    @ct.electron
    def nap(i):
        import time as _t

        _t.sleep(1.0)
        return i

    @ct.lattice
    def flow():
        return [nap(i) for i in range(6)]

    start = time.monotonic()
    result = ct.dispatch_sync(flow, timeout=60)()
    assert result.result == list(range(6))
    assert time.monotonic() - start < 4.5  # six 1 s naps, not one after another


def test_electron_on_a_partial_and_on_a_method():
    import functools

    scaled = ct.electron(functools.partial(add, y=100))

    class Account:
        def __init__(self, balance):
            self.balance = balance

        @ct.electron
        def deposit(self, amount):
            return self.balance + amount

    @ct.lattice
    def flow(a):
        return [scaled(a), Account(5).deposit(a)]

    graph = flow.build_graph(1)
    assert [n.name for n in graph.nodes if n.kind == "electron"] == ["add", "deposit"]
    assert ct.dispatch_sync(flow, timeout=60)(1).result == [101, 6]


def test_electron_metadata_and_lattice_workflow_executor_are_kept():
    executor = ct.LocalExecutor(max_workers=2)
    timed = ct.electron(identity.function, metadata={"timeout": 30, "note": "kept"})

    @ct.lattice(executor="local", workflow_executor=executor)
    def flow(a):
        return timed(a) + 1

    graph = flow.build_graph(1)
    assert graph.get_node_value(0, "metadata")["timeout"] == 30
    assert graph.get_node_value(0, "metadata")["note"] == "kept"
    assert graph.get_node_value(0, "metadata")["executor"] == "local"
    arithmetic = graph.nodes[2]  # identity_+_1 runs on the workflow executor
    assert arithmetic.name == "identity_+_1" and arithmetic.executor is executor
    assert graph.nodes[-1].executor is executor  # and so does the result node
    result = ct.dispatch_sync(flow, timeout=60)(1)
    assert result.result == 2
    assert result.get_node(2).executor == "local"
