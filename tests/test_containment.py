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
import pytest
from helpers import cli, wait_for_file, wait_for_handle, wait_until

import covalent_core as ct
from covalent_core.local.executor import LocalExecutor
from covalent_core.sdk.containment import mechanism
from covalent_core.sdk.processes import is_dead


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
    wait_until(lambda: is_dead(result.result), 60)
    assert_cgroup_gone(result.get_node(0).job_handle, result.result)


def assert_cgroup_gone(handle: dict, *task_pids: int) -> None:
    """Where the machine gave the task a cgroup of its own, it is gone with the task."""
    if handle.get("cgroup"):
        wait_until(lambda: not Path(handle["cgroup"]).exists(), 60)


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
    wait_until(lambda: is_dead(pid), 60)
    result = ct.get_result(dispatch_id)
    assert result.status is ct.Status.CANCELLED
    assert_cgroup_gone(result.get_node(0).job_handle, pid)


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
    wait_until(lambda: is_dead(pid), 60)
    assert_cgroup_gone(result.get_node(0).job_handle, pid)


def test_the_mechanism_in_force_is_shown():
    out = cli("executors")
    assert out.returncode == 0
    assert f"local tasks are contained by {mechanism()}" in " ".join(out.stdout.split())


def test_with_isolation_task_each_task_starts_clean_on_a_warm_worker():
    # (Packs, the default, reset all this but the module state: see test_packs.py.)
    one_worker = LocalExecutor(max_workers=1, isolation="task")
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
        "own_group": True,
    }
    nodes = {n.name: n for n in result.tasks}
    assert nodes["inspect_state"].stdout == "stdout works\n"
    # Both were forked by the same warm worker, each as a process of its own.
    poisoned, inspected = nodes["poison"].job_handle, nodes["inspect_state"].job_handle
    assert poisoned["parent"] == inspected["parent"]
    assert poisoned["pid"] != inspected["pid"]


def my_cgroup():
    with open("/proc/self/cgroup") as fh:
        return fh.read()


def test_where_the_machine_gives_cgroups_each_task_is_born_in_a_cgroup_of_its_own():
    one_worker = LocalExecutor(max_workers=1, isolation="task")
    first = ct.electron(my_cgroup, executor=one_worker)
    second = ct.electron(my_cgroup, executor=one_worker)

    @ct.lattice
    def flow():
        return [first(), second()]

    result = ct.dispatch_sync(flow, timeout=60)()
    assert result.status is ct.Status.COMPLETED, result.error
    handles = [result.get_node(i).job_handle for i in (0, 1)]
    if "cgroup" not in mechanism():
        assert all(h.get("cgroup") is None for h in handles)
        return
    assert handles[0]["parent"] == handles[1]["parent"]  # one worker forked both
    for handle, seen in zip(handles, result.result, strict=True):
        task_cgroup = Path(handle["cgroup"])
        assert task_cgroup.name.startswith("task-")
        assert seen.strip().endswith(f"/{task_cgroup.parent.name}/{task_cgroup.name}")
        assert_cgroup_gone(handle)
    assert handles[0]["cgroup"] != handles[1]["cgroup"]


def escape_then_daemon(pid_file: str) -> None:
    """As root: leave the task's cgroup, then start a daemon with an empty environment (no
    task marker) in a session of its own, and wait."""
    import subprocess as _subprocess
    import time as _time

    with open("/proc/self/cgroup") as fh:
        mounts = [line for line in fh if line.startswith("0::")]
    assert mounts, "no cgroup v2 here"
    with open("/sys/fs/cgroup/unified/cgroup.procs", "w") as fh:  # the root cgroup
        fh.write(str(os.getpid()))
    # A shell that ignores SIGTERM, in a session of its own, with no environment at all.
    daemon = _subprocess.Popen(
        ["/usr/bin/env", "-i", "/bin/sh", "-c", "trap '' TERM; sleep 600"],
        start_new_session=True,
        env={},
    )
    _time.sleep(0.5)
    Path(pid_file).write_text(str(daemon.pid))
    _time.sleep(600)


@pytest.mark.skipif(
    os.geteuid() != 0 or "cgroup" not in mechanism(), reason="needs root and cgroups"
)
def test_a_root_task_that_leaves_its_cgroup_is_still_killed_with_all_it_started(tmp_path: Path):
    task = ct.electron(escape_then_daemon)

    @ct.lattice
    def flow(pid_file):
        return task(pid_file)

    pid_file = tmp_path / "daemon.pid"
    dispatch_id = ct.dispatch(flow)(str(pid_file))
    pid = daemon_pid(pid_file)
    handle = wait_for_handle(dispatch_id, 0)
    assert pid not in cgroup_members(handle["cgroup"]) and not is_dead(pid)
    ct.cancel(dispatch_id, wait=True, timeout=60)
    wait_until(lambda: is_dead(pid), 60)
    assert ct.get_result(dispatch_id).get_node(0).status is ct.Status.CANCELLED
