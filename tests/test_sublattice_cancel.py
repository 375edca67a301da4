"""Cancelling sublattices: recursive, nested, and clear errors for ids inside them."""

from __future__ import annotations

import pytest
from helpers import wait_for_file, wait_until

import covalent_core as ct
from covalent_core.sdk.processes import is_dead


@ct.electron
def long_task(pid_file):
    import os as _os
    import time as _time

    with open(pid_file, "w") as fh:
        fh.write(str(_os.getpid()))
    _time.sleep(1000)


@ct.electron
def inc(x):
    return x + 1


def _nested(pid_file):
    @ct.lattice
    def innermost(path):
        return long_task(path)

    @ct.lattice
    def middle(path):
        return ct.electron(innermost)(path)

    @ct.lattice
    def outer(path):
        sub = ct.electron(middle)(path)
        return [inc(sub), inc(1)]

    return outer


def test_cancelling_a_sublattice_node_cancels_nested_sublattices_and_kills_their_tasks(tmp_path):
    pid_file = tmp_path / "pid"
    dispatch_id = ct.dispatch(_nested(pid_file))(str(pid_file))
    pid = int(wait_for_file(pid_file))
    report = ct.cancel(dispatch_id, task_ids=[0])
    # 1-3 feed the sublattice node (the lattice, its parent's metadata, the path); 4 is
    # inc(sub), 5 inc(1), 7 the result node and 8 the returned list.
    assert report.downstream == [4, 7, 8]
    wait_until(lambda: is_dead(pid), timeout=10)
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.get_node(0).status is ct.Status.CANCELLED
    assert result.get_node(4).status is ct.Status.CANCELLED
    assert result.get_node(5).status is ct.Status.COMPLETED
    middle = ct.get_result(result.get_node(0).sub_dispatch_id)
    assert middle.status is ct.Status.CANCELLED
    inner_node = middle.get_node(0)
    assert inner_node.cancel_reason == "parent sublattice cancelled"
    innermost = ct.get_result(inner_node.sub_dispatch_id)
    assert innermost.get_node(0).status is ct.Status.CANCELLED
    assert innermost.get_node(0).cancel_stage == "run"


def test_task_id_inside_a_sublattice_is_an_error_naming_the_sublattice(tmp_path):
    pid_file = tmp_path / "pid"
    dispatch_id = ct.dispatch(_nested(pid_file))(str(pid_file))
    pid = int(wait_for_file(pid_file))
    try:
        with pytest.raises(
            ct.TaskNotFoundError, match=r"node 0 :sublattice:middle \(sub-dispatch "
        ):
            ct.cancel(dispatch_id, task_ids=[42])
        # The sub-dispatch can be addressed by its own id once its graph exists.
        middle_id = ct.get_result(dispatch_id).get_node(0).sub_dispatch_id
        innermost_id = wait_until(lambda: ct.get_result(middle_id).get_node(0).sub_dispatch_id)
        ct.cancel(innermost_id, task_ids=[0])
        wait_until(lambda: is_dead(pid), timeout=10)
        result = ct.get_result(dispatch_id, wait=True, timeout=60)
        assert result.get_node(0).status is ct.Status.CANCELLED
        assert result.get_node(4).status is ct.Status.CANCELLED
        assert result.get_node(5).status is ct.Status.COMPLETED
    finally:
        ct.cancel(dispatch_id)


def test_sublattice_cancelled_before_it_is_built_is_never_built(tmp_path):
    built = tmp_path / "built"

    @ct.electron
    def nap(s):
        import time as _time

        _time.sleep(s)
        return s

    @ct.lattice
    def inner(x):
        with open(built, "w") as fh:  # runs only if the sublattice graph is built
            fh.write("yes")
        return inc(x)

    @ct.lattice
    def outer():
        return ct.electron(inner)(nap(2.0))

    dispatch_id = ct.dispatch(outer)()
    ct.cancel(dispatch_id, task_ids=[0])
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.get_node(0).status is ct.Status.CANCELLED
    assert result.get_node(0).sub_dispatch_id is None
    assert not built.exists()
