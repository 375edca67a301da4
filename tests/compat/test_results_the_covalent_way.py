"""Results read as Covalent users read them, ported from Covalent's functional tests.

Each workflow is written as a Covalent user writes it (``import covalent_core as ct`` and
nothing else) and asserts what Covalent's own tests assert; the value types of
``get_node_result`` are those real Covalent 0.240 returned for the same workflows.
"""

from __future__ import annotations

import datetime as dt
import sys

import covalent_core as ct


@ct.electron
def identity(a):
    return a


@ct.electron
def add(a, b):
    return a + b


def test_sublattice_result_is_a_result_of_its_own():
    sublattice_add = ct.lattice(lambda a, b: a + b)

    @ct.lattice
    def workflow(a, b):
        res_1 = ct.electron(sublattice_add)(a=a, b=b)
        return identity(a=res_1)

    result = ct.get_result(ct.dispatch(workflow)(a=1, b=2), wait=True)
    assert result.error is None
    assert result.status == ct.Result.COMPLETED
    assert result.result == 3
    assert result.get_node_result(node_id=0)["sublattice_result"].result == 3


def test_node_results_have_covalents_keys_and_types():
    @ct.lattice
    def workflow(a):
        return add(a, 2)

    result = ct.get_result(ct.dispatch(workflow)(1), wait=True)
    record = result.get_node_result(0)
    assert list(record) == [
        "node_id",
        "node_name",
        "start_time",
        "end_time",
        "status",
        "output",
        "error",
        "sublattice_result",
        "stdout",
        "stderr",
    ]
    assert record["node_name"] == "add"
    assert isinstance(record["start_time"], dt.datetime) and record["start_time"].tzinfo is None
    assert record["start_time"] <= record["end_time"]
    assert record["status"] == ct.status.COMPLETED
    assert isinstance(record["output"], ct.TransportableObject)
    assert record["output"].get_deserialized() == 3
    assert record["output"].object_string == "3"
    assert record["error"] is None and record["sublattice_result"] is None
    outputs = result.get_all_node_outputs()
    assert list(outputs)[:3] == ["add(0)", ":parameter:1(1)", ":parameter:2(2)"]
    assert outputs[":parameter:2(2)"].get_deserialized() == 2
    assert isinstance(result.start_time, dt.datetime) and result.end_time >= result.start_time
    assert result.root_dispatch_id == result.dispatch_id


def test_stdout_and_stderr_are_kept_per_node():
    @ct.electron
    def talk(a, b):
        print(a)
        print(b, file=sys.stderr)
        return a + b

    @ct.lattice
    def work_func(a, b):
        return talk(a, b)

    node_results = ct.get_result(ct.dispatch(work_func)(1, 2), wait=True).get_all_node_results()
    assert [nr["stdout"] for nr in node_results if nr["stdout"]] == ["1\n"]
    assert [nr["stderr"] for nr in node_results if nr["stderr"]] == ["2\n"]


def test_failed_electrons_mark_the_dispatch_and_the_graph_failed():
    @ct.electron
    def failing_task(x):
        raise ValueError(f"bad input {x}")

    @ct.lattice
    def workflow(x):
        res1 = failing_task(x)
        res2 = failing_task(res1)
        return res2

    result = ct.get_result(ct.dispatch(workflow)(5), wait=True)
    tg = result.lattice.transport_graph
    assert result.status == ct.Result.FAILED
    assert tg.get_node_value(0, "status") == ct.Result.FAILED
    # Covalent appends the failed task's traceback to its stderr.
    assert "ValueError: bad input 5" in tg.get_node_value(0, "stderr")
    assert 'raise ValueError(f"bad input {x}")' in result.get_node_result(0)["stderr"]
    # The dispatch's error names the node and carries the exception.
    assert "0: failing_task: ValueError: bad input 5" in result.error
    assert "FAILED: ValueError: bad input 5" in str(result)


def test_every_way_of_passing_parameters_reaches_the_task_and_the_inputs():
    @ct.electron
    def task(a, /, b, *args, c, **kwargs):
        return a * b * c, args, kwargs

    @ct.lattice
    def workflow(a, /, b, *args, c, **kwargs):
        return task(a, b, *args, c=c, **kwargs)

    result = ct.get_result(ct.dispatch(workflow)(1, 2, 3, 4, c=5, d=6, e=7), wait=True)
    inputs = result.inputs.get_deserialized()
    assert inputs["args"] == (1, 2, 3, 4)
    assert inputs["kwargs"] == {"c": 5, "d": 6, "e": 7}
    assert result.result == (10, (3, 4), {"d": 6, "e": 7})


def test_wait_for_orders_the_waiting_task_after_its_parents():
    @ct.electron
    def task_1a(a):
        return a**2

    @ct.electron
    def task_1b(a):
        return a**3

    @ct.electron
    def task_2(x, y):
        return x * y

    @ct.electron
    def task_3(b):
        return b**3

    @ct.lattice
    def workflow():
        res_1a = task_1a(2)
        res_1b = task_1b(2)
        res_2 = task_2(res_1a, 3)
        res_3 = ct.wait(task_3(5), [res_1a, res_1b])
        return task_2(res_2, res_3)

    result = ct.get_result(ct.dispatch(workflow)(), wait=True)
    assert result.status == ct.Result.COMPLETED
    assert result.get_node_result(6)["start_time"] > result.get_node_result(0)["end_time"]
    assert result.get_node_result(6)["start_time"] > result.get_node_result(2)["end_time"]
    assert result.result == 1500
    assert workflow() == 1500


def test_getitem_with_plain_and_electron_keys():
    @ct.electron
    def create_array():
        return [0, 1, 2, 3, 4, 5]

    @ct.lattice
    def workflow():
        arr = create_array()
        third = arr[identity(2)]
        return arr[third]

    assert ct.get_result(ct.dispatch(workflow)(), wait=True).result == 2


def test_get_result_options_as_in_covalent():
    @ct.lattice
    def inner(a):
        return add(a, 1)

    @ct.lattice
    def workflow(a):
        return add(ct.electron(inner)(a), 10)

    dispatch_id = ct.dispatch(workflow)(1)
    full = ct.get_result(dispatch_id, wait=True)
    assert full.result == 12
    assert ct.get_result(dispatch_id, status_only=True) == {
        "id": dispatch_id,
        "status": "COMPLETED",
    }
    assert ct.get_result(dispatch_id, workflow_output=False).result is None
    bare = ct.get_result(dispatch_id, intermediate_outputs=False)
    assert bare.get_node_result(0)["output"] is None and bare.result == 12
    assert (
        ct.get_result(dispatch_id, sublattice_results=False).get_node_result(0)["sublattice_result"]
        is None
    )
    assert full.get_node_result(0)["sublattice_result"].result == 2


def test_status_constants_compare_both_ways_and_print_covalents_names():
    assert ct.Result.COMPLETED == ct.status.COMPLETED == ct.Status.COMPLETED == "COMPLETED"
    assert ct.Result.NEW_OBJ == ct.Result.NEW_OBJECT == ct.status.NEW_OBJECT
    assert str(ct.status.CANCELLED) == "CANCELLED" and str(ct.Result.RUNNING) == "RUNNING"
    assert not ct.status.NEW_OBJECT and ct.status.RUNNING  # as Covalent's Status.__bool__
    assert ct.status.is_terminal(ct.status.FAILED) and not ct.status.is_terminal("RUNNING")
    assert ct.Result.POSTPROCESSING_FAILED == "POSTPROCESSING_FAILED"


def test_transportable_object_round_trips():
    to = ct.TransportableObject({"a": [1, 2]})
    assert to.get_deserialized() == {"a": [1, 2]}
    assert to.object_string == "{'a': [1, 2]}"
    assert ct.TransportableObject.from_dict(to.to_dict()) == to
    assert ct.TransportableObject.deserialize_from_json(to.json).get_deserialized() == {"a": [1, 2]}
    assert ct.TransportableObject.make_transportable(to) is to
    assert to.python_version.count(".") == 2
