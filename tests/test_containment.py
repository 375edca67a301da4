"""Every process a task starts dies with it, and each task starts clean on a warm worker.

A task double-forks a daemon into its own session (its parent exits, so the daemon is no
longer in the task's process group nor below the task): it must be gone after the task
returns, after a cancel and after a timeout. The next task on the same worker must see
nothing the previous one changed.
"""

from __future__ import annotations

import os
from pathlib import Path

import daemons
from helpers import cli, wait_for_file, wait_until

import covalent_core as ct
from covalent_core.executors.containment import mechanism
from covalent_core.executors.local import LocalExecutor
from covalent_core.executors.processes import is_dead


def daemon_pid(path: Path) -> int:
    return int(wait_for_file(path))


def test_a_daemon_is_killed_when_its_task_returns(tmp_path: Path):
    task = ct.electron(daemons.daemon_then_return)

    @ct.lattice
    def flow(pid_file):
        return task(pid_file)

    pid_file = tmp_path / "daemon.pid"
    result = ct.dispatch_sync(flow, timeout=60)(str(pid_file))
    assert result.status is ct.Status.COMPLETED, result.error
    assert result.result == daemon_pid(pid_file)
    wait_until(lambda: is_dead(result.result), 10)
    assert_cgroup_gone(result.get_node(0).job_handle, result.result)


def assert_cgroup_gone(handle: dict, *task_pids: int) -> None:
    """Where the machine gave the task's worker a cgroup, nothing of the task is left in it:
    it holds the worker and the child it forked ahead for its next task, or is gone with it."""
    if handle.get("cgroup"):
        wait_until(lambda: not cgroup_members(handle["cgroup"]) & set(task_pids), 10)
        assert len(cgroup_members(handle["cgroup"]) - {handle["pid"]}) <= 1


def cgroup_members(path: str) -> set[int]:
    try:
        return {int(p) for p in (Path(path) / "cgroup.procs").read_text().split()}
    except FileNotFoundError:
        return set()


def test_a_daemon_is_killed_when_its_task_is_cancelled(tmp_path: Path):
    task = ct.electron(daemons.daemon_then_sleep)

    @ct.lattice
    def flow(pid_file):
        return task(pid_file, 600)

    pid_file = tmp_path / "daemon.pid"
    dispatch_id = ct.dispatch(flow)(str(pid_file))
    pid = daemon_pid(pid_file)
    assert not is_dead(pid)
    ct.cancel(dispatch_id, wait=True, timeout=60)
    wait_until(lambda: is_dead(pid), 10)
    result = ct.get_result(dispatch_id)
    assert result.status is ct.Status.CANCELLED
    handle = result.get_node(0).job_handle
    if handle.get("cgroup"):  # a cancel ends the worker too, and its cgroup with it
        wait_until(lambda: not Path(handle["cgroup"]).exists(), 10)


def test_a_daemon_is_killed_when_its_task_times_out(tmp_path: Path):
    task = ct.electron(daemons.daemon_then_sleep, timeout=2.0)

    @ct.lattice
    def flow(pid_file):
        return task(pid_file, 600)

    pid_file = tmp_path / "daemon.pid"
    dispatch_id = ct.dispatch(flow)(str(pid_file))
    pid = daemon_pid(pid_file)
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.get_node(0).cancel_reason == "timeout"
    wait_until(lambda: is_dead(pid), 10)
    assert_cgroup_gone(result.get_node(0).job_handle, pid)


def test_the_mechanism_in_force_is_shown():
    out = cli("executors")
    assert out.returncode == 0
    assert f"local tasks are contained by {mechanism()}" in " ".join(out.stdout.split())


def test_each_task_starts_clean_on_a_warm_worker():
    one_worker = LocalExecutor(max_workers=1)
    poison = ct.electron(daemons.poison, executor=one_worker)
    inspect = ct.electron(daemons.inspect_state, executor=one_worker)

    @ct.lattice
    def flow():
        return inspect(poison())

    result = ct.dispatch_sync(flow, timeout=60)()
    assert result.status is ct.Status.COMPLETED, result.error
    assert result.result == {
        "poison": None,
        "sigterm": True,
        "socket_timeout": None,
        "cwd": os.getcwd(),
        "global": None,
        "pgid_is_worker": True,
    }
    nodes = {n.name: n for n in result.tasks}
    assert nodes["inspect_state"].stdout == "stdout works\n"
    # Both ran on the same warm worker (its PID in both handles).
    assert nodes["poison"].job_handle["pid"] == nodes["inspect_state"].job_handle["pid"]


@ct.electron
def my_cgroup():
    with open("/proc/self/cgroup") as fh:
        return fh.read()


def test_where_the_machine_gives_cgroups_each_task_is_born_in_its_workers_own():
    @ct.lattice
    def flow():
        return my_cgroup()

    result = ct.dispatch_sync(flow, timeout=60)()
    handle = result.get_node(0).job_handle
    if "cgroup" not in mechanism():
        assert handle.get("cgroup") is None
        return
    worker_cgroup = Path(handle["cgroup"])
    assert worker_cgroup.name.startswith("worker-")
    assert result.result.strip().endswith(f"/{worker_cgroup.parent.name}/{worker_cgroup.name}")
    assert handle["pid"] in cgroup_members(handle["cgroup"])  # the worker, waiting
    assert_cgroup_gone(handle)
