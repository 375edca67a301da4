"""Packs: tasks of one dispatch run one after another in one process when more are ready than
workers are free, and each keeps what a task of its own process would have.

A pack forms when a slot frees while several tasks wait for it, so these tests first hold
the executor's one slot with a short task, then let the tasks to pack wait behind it.
"""

from __future__ import annotations

from pathlib import Path

import daemons
import pytest
from helpers import wait_until

import covalent_core as ct
from covalent_core.local.executor import LocalExecutor
from covalent_core.sdk.containment import mechanism
from covalent_core.sdk.processes import is_dead
from covalent_core.testing import kill_service

pytestmark = pytest.mark.skipif(
    "cgroup" not in mechanism(), reason="packs need a cgroup per pack (none writable here)"
)


def hold(seconds: float) -> str:
    import time as _time

    _time.sleep(seconds)
    return "held"


def step(log: str, index: int, seconds: float) -> int:
    """Note the start, sleep, note the end; the process's PID."""
    import os as _os
    import time as _time

    with open(log, "a") as fh:
        fh.write(f"start {index} {_os.getpid()}\n")
    _time.sleep(seconds)
    with open(log, "a") as fh:
        fh.write(f"end {index}\n")
    return _os.getpid()


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_a_deep_queue_shares_processes_and_isolation_task_gives_each_its_own():
    packed = ct.electron(daemons.own_pid)
    alone = ct.electron(daemons.own_pid, executor=LocalExecutor(isolation="task"))

    @ct.lattice
    def wide(n: int) -> list[int]:
        return [packed(i) for i in range(n)]

    @ct.lattice
    def separate(n: int) -> list[int]:
        return [alone(i) for i in range(n)]

    pids = ct.dispatch_sync(wide, timeout=300)(1000).result
    assert len(pids) == 1000 and len(set(pids)) < 500, f"{len(set(pids))} processes"
    pids = ct.dispatch_sync(separate, timeout=300)(20).result
    assert len(set(pids)) == 20


def test_what_a_task_changes_is_reset_before_the_next_task_of_its_pack(tmp_path: Path):
    log = str(tmp_path / "log")
    fresh = ct.electron(daemons.inspect_all, executor=LocalExecutor(isolation="task"))
    one = LocalExecutor(max_workers=1)
    first = ct.electron(hold, executor=one)
    poison = ct.electron(daemons.poison_all, executor=one)
    inspect = ct.electron(daemons.inspect_all, executor=one)

    @ct.lattice
    def alone(log: str) -> dict:
        return fresh(log)

    @ct.lattice
    def packed(log: str) -> list:
        return [first(0.5), poison(log), inspect(log)]

    clean = ct.dispatch_sync(alone, timeout=120)(log).result
    result = ct.dispatch_sync(packed, timeout=120)(log)
    assert result.status is ct.Status.COMPLETED, result.error
    _, poisoner, seen = result.result
    assert seen["pid"] == poisoner, "the two tasks did not share a process (no pack formed)"
    # Only the module state of the user's code carries over, as documented.
    assert seen.pop("module_state") == "poisoned"
    for view in (clean, seen):
        view.pop("pid"), view.pop("module_state", None)
    assert seen == clean
    assert seen["poison"] is None and seen["sigterm"] and not seen["log_open"]
    node = result.get_node(next(n.node_id for n in result.tasks if n.name == "inspect_all"))
    assert node.stdout == "stdout works\n" and node.stderr == "stderr works\n"


def test_a_process_that_cannot_be_reset_takes_no_further_task():
    one = LocalExecutor(max_workers=1)
    first = ct.electron(hold, executor=one)
    threads = ct.electron(daemons.start_thread_and_return, executor=one)
    after = ct.electron(daemons.own_pid, executor=one)

    @ct.lattice
    def flow() -> list:
        return [first(0.5), threads(), after(1)]

    result = ct.dispatch_sync(flow, timeout=120)()
    assert result.status is ct.Status.COMPLETED, result.error
    _, with_thread, next_one = result.result
    assert with_thread != next_one  # a fresh process: the thread could not be stopped


def test_cancelling_one_task_of_a_running_pack_keeps_the_others(tmp_path: Path):
    log = tmp_path / "log"
    one = LocalExecutor(max_workers=1)
    first = ct.electron(hold, executor=one)
    task = ct.electron(step, executor=one)
    lengths = [0.05, 0.05, 600, 0.05, 0.05, 0.05]

    @ct.lattice
    def flow(log: str) -> list:
        return [first(0.5), *[task(log, i, s) for i, s in enumerate(lengths)]]

    dispatch_id = ct.dispatch(flow)(str(log))
    wait_until(lambda: any(line.startswith("start 2 ") for line in lines(log)), 60)
    pid = int(next(line for line in lines(log) if line.startswith("start 2 ")).split()[2])
    nodes = [n for n in ct.get_result(dispatch_id).tasks if n.name == "step"]
    third = nodes[2]
    assert third.job_handle["pid"] == pid and third.job_handle["pack"] is True
    ct.cancel(dispatch_id, task_ids=[third.node_id])
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    assert result.status is ct.Status.CANCELLED
    steps = [n for n in result.tasks if n.name == "step"]
    assert [n.status for n in steps] == [
        ct.Status.COMPLETED, ct.Status.COMPLETED, ct.Status.CANCELLED,
        ct.Status.COMPLETED, ct.Status.COMPLETED, ct.Status.COMPLETED,
    ]  # fmt: skip
    assert steps[0].output == steps[1].output == pid  # the first two ran in that process
    wait_until(lambda: is_dead(pid), 30)
    starts = [line.split()[1] for line in lines(log) if line.startswith("start")]
    assert sorted(starts) == [str(i) for i in range(6)], starts  # each once
    assert "end 2" not in lines(log)


def test_a_pack_outlives_a_killed_service_and_each_task_runs_once(tmp_path: Path):
    log = tmp_path / "log"
    one = LocalExecutor(max_workers=1)
    first = ct.electron(hold, executor=one)
    task = ct.electron(step, executor=one)

    @ct.lattice
    def flow(log: str) -> list:
        return [first(0.5), *[task(log, i, 0.4) for i in range(6)]]

    dispatch_id = ct.dispatch(flow)(str(log))
    wait_until(lambda: any(line.startswith("start 1 ") for line in lines(log)), 60)
    kill_service()
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED, result.error
    starts = [line.split()[1] for line in lines(log) if line.startswith("start")]
    assert sorted(starts) == [str(i) for i in range(6)], starts
    assert len({line.split()[2] for line in lines(log) if line.startswith("start")}) == 1


def daemon_is_dead(pid_file: str, _after: int) -> bool:
    from covalent_core.sdk.processes import is_dead as _is_dead

    return _is_dead(int(open(pid_file).read()))


def test_a_daemon_of_a_packed_task_is_dead_before_the_next_task_starts(tmp_path: Path):
    pid_file = str(tmp_path / "daemon.pid")
    one = LocalExecutor(max_workers=1)
    first = ct.electron(hold, executor=one)
    daemon = ct.electron(daemons.daemon_then_return, executor=one)
    check = ct.electron(daemon_is_dead, executor=one)
    mark = ct.electron(daemons.own_pid, executor=one)

    @ct.lattice
    def flow(pid_file: str) -> list:
        return [first(0.5), daemon(pid_file), mark(0), check(pid_file, 1)]

    result = ct.dispatch_sync(flow, timeout=120)(pid_file)
    assert result.status is ct.Status.COMPLETED, result.error
    _, daemon_pid, packed_pid, dead = result.result
    assert daemon_pid == int(Path(pid_file).read_text())
    assert dead is True
    # The daemon's task ran in the same process as the next ones (a pack).
    starter = next(n for n in result.tasks if n.name == "daemon_then_return")
    assert starter.job_handle["pid"] == packed_pid


def test_cancelling_a_task_its_pack_has_not_reached_spares_the_one_it_runs(tmp_path: Path):
    log = tmp_path / "log"
    one = LocalExecutor(max_workers=1)
    first = ct.electron(hold, executor=one)
    task = ct.electron(step, executor=one)

    @ct.lattice
    def flow(log: str) -> list:
        return [first(0.5), task(log, 0, 3.0), task(log, 1, 0.05), task(log, 2, 0.05)]

    dispatch_id = ct.dispatch(flow)(str(log))
    wait_until(lambda: any(line.startswith("start 0 ") for line in lines(log)), 60)
    steps = [n for n in ct.get_result(dispatch_id).tasks if n.name == "step"]
    wait_until(lambda: all(n.job_handle for n in [ct.get_result(dispatch_id).get_node(
        s.node_id) for s in steps]), 30)  # fmt: skip
    ct.cancel(dispatch_id, task_ids=[steps[1].node_id], wait=True, timeout=60)
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    after = [result.get_node(s.node_id) for s in steps]
    assert [n.status for n in after] == [
        ct.Status.COMPLETED, ct.Status.CANCELLED, ct.Status.COMPLETED
    ], [(n.status, n.error) for n in after]  # fmt: skip
    starts = [line.split()[1] for line in lines(log) if line.startswith("start")]
    assert sorted(starts) == ["0", "2"], starts  # the withdrawn one never started
    assert after[0].output == after[2].output  # the pack's process went on


@ct.electron
def my_title() -> str:
    with open("/proc/self/cmdline", "rb") as fh:
        return fh.read().replace(b"\0", b" ").decode().strip()


def test_a_task_process_is_titled_with_its_task(tmp_path) -> None:
    """`ps` tells which task a process runs: covalent-core task N (name) of DISPATCH; the
    next task of the pack shows its own."""

    @ct.lattice
    def titled():
        return [my_title(), my_title()]

    result = ct.dispatch_sync(titled, timeout=60)()
    assert result.result == [
        f"covalent-core task {i} (my_title) of {result.dispatch_id}" for i in (0, 1)
    ]
