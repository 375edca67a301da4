"""Redispatch: cancel a branch, fix it, go on, reusing what finished (ct.redispatch, the CLI).

Every task writes a file per execution into a private directory, so the tests count what ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers import wait_until

import covalent_core as ct
from covalent_core.graph import KIND_PARAMETER
from covalent_core.values import is_value_ref, value_ref_path


def executions(runs: Path, name: str) -> int:
    return sum(1 for p in runs.iterdir() if p.name.startswith(f"{name}-"))


def mark(runs: Path, name: str) -> None:
    (runs / f"{name}-{uuid.uuid4().hex}").touch()


def branching(runs: Path, gate: Path):
    """A workflow of quick tasks, one long branch that waits for ``gate``, and a combiner."""

    @ct.electron
    def quick(i):
        mark(runs, "quick")
        return i

    @ct.electron
    def long_branch(x):
        mark(runs, "long")
        while not gate.exists():
            time.sleep(0.05)
        return x * 100

    @ct.electron
    def combine(values, extra):
        mark(runs, "combine")
        return sum(values) + extra

    @ct.lattice
    def workflow(n):
        parts = [quick(i) for i in range(n)]
        return combine(parts, long_branch(parts[1]))

    return workflow


def node_named(result: ct.Result, name: str) -> ct.NodeResult:
    return next(n for n in result.tasks if n.name == name)


def test_cancel_a_branch_fix_it_and_go_on_reusing_the_rest(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    workflow = branching(runs, tmp_path / "never")
    first = ct.dispatch(workflow)(4)
    long_id = wait_until(
        lambda: next(
            (n.node_id for n in ct.get_result(first).tasks
             if n.name == "long_branch" and n.status is ct.Status.RUNNING),
            None,
        ),
        60,
    )  # fmt: skip
    wait_until(lambda: executions(runs, "quick") == 4, 60)
    ct.cancel(first, task_ids=[long_id], wait=True, timeout=60)
    before = ct.get_result(first, wait=True, timeout=60)
    assert node_named(before, "long_branch").status is ct.Status.CANCELLED
    assert node_named(before, "combine").status is ct.Status.CANCELLED

    @ct.electron
    def long_branch(x):  # the fix: no waiting
        mark(runs, "fixed")
        return x * 100

    second = ct.redispatch(
        first, replace_electrons={"long_branch": long_branch}, reuse_previous_results=True
    )()
    result = ct.get_result(second, wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED, result.error
    assert result.result == (0 + 1 + 2 + 3) + 100
    assert executions(runs, "quick") == 4, "finished tasks ran again"
    assert executions(runs, "fixed") == 1 and executions(runs, "combine") == 1
    assert result.redispatched_from == first
    reused = {n.name for n in result.tasks if n.reused}
    assert {n.name for n in result.tasks if n.name == "quick"} <= reused
    assert all(n.reused_from == first for n in result.tasks if n.reused)
    assert not node_named(result, "long_branch").reused
    assert node_named(result, "long_branch").job_handle is not None
    assert all(n.job_handle is None for n in result.tasks if n.reused), "a reused node ran"


def test_without_reuse_everything_runs_again(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    gate = tmp_path / "gate"
    gate.touch()
    first = ct.dispatch(branching(runs, gate))(2)
    assert ct.get_result(first, wait=True, timeout=60).status is ct.Status.COMPLETED
    second = ct.redispatch(first)()
    result = ct.get_result(second, wait=True, timeout=60)
    assert result.result == 101
    assert executions(runs, "quick") == 4 and executions(runs, "combine") == 2
    assert not any(n.reused for n in result.tasks)


def test_new_arguments_rerun_only_what_they_reach(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()

    @ct.electron
    def load(name):
        mark(runs, "load")
        return name.upper()

    @ct.electron
    def scale(x, factor):
        mark(runs, "scale")
        return x * factor

    @ct.lattice
    def workflow(name, factor):
        return [load(name), scale(3, factor)]

    first = ct.dispatch(workflow)("a", 2)
    assert ct.get_result(first, wait=True, timeout=60).result == ["A", 6]
    second = ct.redispatch(first, reuse_previous_results=True)("a", 5)
    result = ct.get_result(second, wait=True, timeout=60)
    assert result.result == ["A", 15]
    assert executions(runs, "load") == 1 and executions(runs, "scale") == 2
    # Called with nothing: the earlier inputs, everything reused.
    third = ct.redispatch(second, reuse_previous_results=True)()
    again = ct.get_result(third, wait=True, timeout=60)
    assert again.result == ["A", 15]
    assert executions(runs, "load") == 1 and executions(runs, "scale") == 2
    assert {n.reused_from for n in again.tasks} == {first, second}  # where each was computed
    # Covalent's marks: a reused node starts and ends at one moment; one that ran again
    # took time; a parameter is a value, whose start and end are one timestamp too.
    reran = {n.node_id for n in result.tasks if n.reused_from is None}
    graph = result.lattice.transport_graph
    for node in result.tasks:
        start = graph.get_node_value(node.node_id, "start_time")
        end = graph.get_node_value(node.node_id, "end_time")
        assert start is not None and end is not None
        assert (start == end) is (node.node_id not in reran), node
    parameters = [n for n in result.nodes if n.kind == KIND_PARAMETER]
    assert parameters
    for node in parameters:
        start = graph.get_node_value(node.node_id, "start_time")
        assert start is not None and start == graph.get_node_value(node.node_id, "end_time")


def test_new_lattice(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()

    @ct.electron
    def base(x):
        mark(runs, "base")
        return x + 1

    @ct.lattice
    def workflow(x):
        return base(x)

    @ct.lattice
    def extended(x):
        return [base(x), base(x) * 10]

    first = ct.dispatch(workflow)(1)
    ct.get_result(first, wait=True, timeout=60)
    second = ct.redispatch(first, new_lattice=extended, reuse_previous_results=True)()
    result = ct.get_result(second, wait=True, timeout=60)
    assert result.result == [2, 20]
    assert executions(runs, "base") == 1  # every base(1) of the new graph was computed before


def make_adder(offset):
    @ct.electron
    def add(x, extra=0):
        return x + offset + extra

    return add


@pytest.mark.parametrize(
    "change",
    ["closure", "default", "code", "executor option", "timeout"],
)
def test_a_node_whose_work_changed_is_not_reused(change: str, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()

    def version(offset: int = 1, default: int = 0, body: int = 0, workers: int = 2, timeout=None):
        if body:

            @ct.electron(executor=ct.LocalExecutor(max_workers=workers), timeout=timeout)
            def task(x, extra=default):
                mark(runs, "task")
                return x + offset + extra + 1000

        else:

            @ct.electron(executor=ct.LocalExecutor(max_workers=workers), timeout=timeout)
            def task(x, extra=default):
                mark(runs, "task")
                return x + offset + extra

        @ct.lattice
        def workflow(x):
            return task(x)

        return workflow

    first = ct.dispatch(version())(1)
    assert ct.get_result(first, wait=True, timeout=60).result == 2
    same = ct.redispatch(first, new_lattice=version(), reuse_previous_results=True)()
    assert ct.get_result(same, wait=True, timeout=60).get_node(0).reused
    changed = {
        "closure": version(offset=2),
        "default": version(default=5),
        "code": version(body=1),
        "executor option": version(workers=3),
        "timeout": version(timeout=30.0),
    }[change]
    second = ct.redispatch(first, new_lattice=changed, reuse_previous_results=True)()
    result = ct.get_result(second, wait=True, timeout=60)
    assert result.status is ct.Status.COMPLETED
    assert not result.get_node(0).reused
    assert executions(runs, "task") == 2


def test_failed_and_cancelled_nodes_are_not_reused(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    switch = tmp_path / "fail"
    switch.touch()

    @ct.electron
    def flaky(x):
        mark(runs, "flaky")
        if switch.exists():
            raise RuntimeError("not today")
        return x

    @ct.lattice
    def workflow(x):
        return flaky(x)

    first = ct.dispatch(workflow)(1)
    assert ct.get_result(first, wait=True, timeout=60).status is ct.Status.FAILED
    switch.unlink()
    second = ct.redispatch(first, reuse_previous_results=True)()
    assert ct.get_result(second, wait=True, timeout=60).result == 1
    assert executions(runs, "flaky") == 2


def test_a_missing_output_is_not_reused_and_a_big_one_is_not_copied(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()

    @ct.electron
    def big(n):
        mark(runs, "big")
        return os.urandom(n)

    @ct.electron
    def size(data):
        return len(data)

    @ct.lattice
    def workflow(n):
        return size(big(n))

    first = ct.dispatch(workflow)(50 * 2**20)
    assert ct.get_result(first, wait=True, timeout=120).result == 50 * 2**20
    second = ct.redispatch(first, reuse_previous_results=True)()
    result = ct.get_result(second, wait=True, timeout=120)
    assert result.result == 50 * 2**20 and executions(runs, "big") == 1
    old, new = (ct.get_result(d).get_node(0) for d in (first, second))
    assert is_value_ref(old.output_bytes) and new.output_bytes == old.output_bytes
    path = value_ref_path(old.output_bytes)
    assert second not in path, "the 50 MB output was copied"
    os.unlink(path)  # the output is gone: the next redispatch must compute it again
    third = ct.redispatch(second, reuse_previous_results=True)()
    assert ct.get_result(third, wait=True, timeout=120).result == 50 * 2**20
    assert executions(runs, "big") == 2


def test_a_completed_sublattice_is_reused_whole(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()

    @ct.electron
    def inner(x):
        mark(runs, "inner")
        return x * 2

    @ct.lattice
    def sub(x):
        return [inner(x), inner(x + 1)]

    @ct.electron
    def outer(x):
        mark(runs, "outer")
        return x

    @ct.lattice
    def workflow(x, y):
        return [ct.electron(sub)(x), outer(y)]

    first = ct.dispatch(workflow)(1, 2)
    assert ct.get_result(first, wait=True, timeout=60).result == [[2, 4], 2]
    second = ct.redispatch(first, reuse_previous_results=True)(1, 3)
    result = ct.get_result(second, wait=True, timeout=60)
    assert result.result == [[2, 4], 3]
    assert executions(runs, "inner") == 2 and executions(runs, "outer") == 2


def test_a_redispatch_can_be_cancelled(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    first = ct.dispatch(branching(runs, tmp_path / "never"))(2)
    # Both quick tasks done (quick(0) is nobody's input, so it may run after the long branch
    # started), the long one running: the redispatch reuses the two, and runs only that one.
    wait_until(
        lambda: (
            executions(runs, "long") == 1
            and [n.status for n in ct.get_result(first).tasks if n.name == "quick"]
            == [ct.Status.COMPLETED] * 2
        ),
        60,
    )
    ct.cancel(first, wait=True, timeout=60)
    second = ct.redispatch(first, reuse_previous_results=True)()
    wait_until(lambda: executions(runs, "long") == 2, 60)
    ct.cancel(second, wait=True, timeout=60)
    result = ct.get_result(second)
    assert result.status is ct.Status.CANCELLED
    assert node_named(result, "long_branch").status is ct.Status.CANCELLED
    assert executions(runs, "quick") == 2  # reused in the redispatch


def test_bad_redispatch_requests_get_clear_errors() -> None:
    with pytest.raises(ct.DispatchNotFoundError):
        ct.redispatch("no-such-dispatch")
    with pytest.raises(TypeError, match="new_lattice is a @lattice"):
        ct.redispatch("x", new_lattice=print)
    with pytest.raises(TypeError, match="replace_electrons maps"):
        ct.redispatch("x", replace_electrons={"a": 3})


def test_the_cli_redispatches_with_reuse_and_replacement(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    module = tmp_path / f"fixes_{uuid.uuid4().hex[:8]}.py"
    module.write_text(
        "import uuid, pathlib\n"
        "def long_branch(x):\n"
        f"    (pathlib.Path({str(runs)!r}) / f'fixed-{{uuid.uuid4().hex}}').touch()\n"
        "    return x * 100\n"
    )
    first = ct.dispatch(branching(runs, tmp_path / "never"))(2)
    # Both quick tasks done (quick(0) is nobody's input, so it may run after the long branch
    # started), the long one running: the redispatch reuses the two, and runs only that one.
    wait_until(
        lambda: (
            executions(runs, "long") == 1
            and [n.status for n in ct.get_result(first).tasks if n.name == "quick"]
            == [ct.Status.COMPLETED] * 2
        ),
        60,
    )
    ct.cancel(first, wait=True, timeout=60)
    cli = [sys.executable, "-m", "covalent_core", "redispatch", first, "--reuse"]
    done = subprocess.run(
        [*cli, "--replace", f"long_branch={module.stem}:long_branch"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    second = done.stdout.strip()
    result = ct.get_result(second, wait=True, timeout=60)
    assert result.result == 0 + 1 + 100, [n.error for n in result.tasks]
    assert executions(runs, "quick") == 2 and executions(runs, "fixed") == 1
    status = subprocess.run(
        [sys.executable, "-m", "covalent_core", "status", second],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "reused from" in status.stdout and first in status.stdout, status.stdout
    assert f"redispatch of {first}" in status.stdout
    bad = subprocess.run(
        [*cli, "--replace", "nonsense"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "NAME=MODULE:FUNCTION" in bad.stderr
    assert "Traceback" not in bad.stderr
