"""The dispatcher service dies (SIGKILL) mid-run: the next re-attaches; nothing lost, nothing twice.

Every test kills the real service process and checks what the machine and the store say
afterwards: how often each task started (its own log file), whether its process lives, the
node's status, reason and output.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import helpers
from helpers import cli, node, starts, wait_for_file, wait_for_handle, wait_until
from recording_executor import RecordingExecutor, events

import covalent_core as ct
from covalent_core.cancel_requests import request_cancel
from covalent_core.sdk.processes import is_dead
from covalent_core.testing import kill_service, service_pid

logged = ct.electron(helpers.logged)


def started_pid(log_dir: Path, name: str) -> int:
    return int(wait_for_file(log_dir / f"{name}.starts").split()[0])


def test_a_running_task_is_reattached_and_the_next_starts_once(tmp_path):
    @ct.lattice
    def flow(log_dir):
        first = logged(log_dir, "first", 3, 1)
        return logged(log_dir, "second", 0.1, first + 1)

    dispatch_id = ct.dispatch(flow)(str(tmp_path))
    pid = started_pid(tmp_path, "first")
    dead_owner = ct.get_result(dispatch_id).get_node(0).job_handle
    killed = kill_service()
    assert not is_dead(pid), "the task died with the service"
    # Nobody restarts anything: waiting for the result starts a service.
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED, result.error
    assert result.result == 2
    assert starts(tmp_path, "first") == 1 and starts(tmp_path, "second") == 1
    first = result.get_node(0)
    assert first.job_handle == dead_owner
    assert first.reattached_by is not None and f":{killed}:" not in first.reattached_by


def test_a_task_that_finished_while_no_service_ran_keeps_its_result(tmp_path):
    @ct.lattice
    def flow(log_dir):
        return logged(log_dir, "quick", 1.0, 42)

    dispatch_id = ct.dispatch(flow)(str(tmp_path))
    started_pid(tmp_path, "quick")
    kill_service()
    wait_for_file(tmp_path / "quick.ends")
    assert service_pid() is None
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED, result.error
    assert result.result == 42
    assert starts(tmp_path, "quick") == 1


def test_a_cancel_stored_while_no_service_runs_stops_the_job_when_one_starts(tmp_path):
    @ct.lattice
    def flow(log_dir):
        return logged(log_dir, "long", 1000, 0)

    dispatch_id = ct.dispatch(flow)(str(tmp_path))
    pid = started_pid(tmp_path, "long")
    kill_service()
    request_cancel(dispatch_id)  # the durable flag only: no service is woken
    assert service_pid() is None and not is_dead(pid)
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    assert result.status is ct.Status.CANCELLED
    assert result.get_node(0).status is ct.Status.CANCELLED
    wait_until(lambda: is_dead(pid), timeout=30, what="the cancelled task's process died")
    assert starts(tmp_path, "long") == 1


def test_cancel_from_the_cli_while_no_service_runs(tmp_path):
    @ct.lattice
    def flow(log_dir):
        return logged(log_dir, "long", 1000, 0)

    dispatch_id = ct.dispatch(flow)(str(tmp_path))
    pid = started_pid(tmp_path, "long")
    kill_service()
    done = cli("cancel", dispatch_id, "--wait", "--timeout", "60")
    assert done.returncode == 0, done.stderr
    assert node(dispatch_id, 0).status is ct.Status.CANCELLED
    wait_until(lambda: is_dead(pid), 60)


def test_listing_starts_a_service_for_an_orphaned_dispatch(tmp_path):
    @ct.lattice
    def flow(log_dir):
        return logged(log_dir, "task", 2, 7)

    dispatch_id = ct.dispatch(flow)(str(tmp_path))
    started_pid(tmp_path, "task")
    kill_service()
    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    assert dispatch_id[:8] in listed.stdout
    assert service_pid() is not None, "`list` found an orphaned dispatch and started no service"
    wait_until(lambda: node(dispatch_id, 0).status is ct.Status.COMPLETED, timeout=60)
    assert starts(tmp_path, "task") == 1


def test_status_starts_a_service_for_an_orphaned_dispatch(tmp_path):
    @ct.lattice
    def flow(log_dir):
        return logged(log_dir, "task", 2, 7)

    dispatch_id = ct.dispatch(flow)(str(tmp_path))
    started_pid(tmp_path, "task")
    kill_service()
    shown = cli("status", dispatch_id)
    assert shown.returncode == 4, shown.stderr  # still running
    assert service_pid() is not None
    assert ct.get_result(dispatch_id, wait=True, timeout=60).result == 7
    assert cli("status", dispatch_id).returncode == 0


def orphaned_sleeper(log_dir: Path, name: str) -> tuple[str, dict]:
    """A dispatch of one long task, running, whose service was then killed: (id, handle)."""

    @ct.lattice
    def flow(log_dir):
        return logged(log_dir, name, 1000, 0)

    dispatch_id = ct.dispatch(flow)(str(log_dir))
    started_pid(log_dir, name)
    handle = wait_for_handle(dispatch_id, 0)
    kill_service()
    return dispatch_id, handle


def test_a_job_gone_without_an_outcome_fails_with_dispatcher_lost(tmp_path):
    dispatch_id, handle = orphaned_sleeper(tmp_path, "victim")
    os.killpg(handle["pgid"], signal.SIGKILL)  # the machine's OOM killer, say
    wait_until(lambda: is_dead(handle["pid"]), timeout=10)
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    victim = result.get_node(0)
    assert victim.status is ct.Status.FAILED
    assert victim.cancel_reason == "dispatcher lost"
    assert "found no trace of its job" in victim.error and str(handle["pid"]) in victim.error


def test_stopping_the_service_leaves_running_tasks_running(tmp_path):
    @ct.lattice
    def flow(log_dir):
        return logged(log_dir, "task", 10, 5)

    dispatch_id = ct.dispatch(flow)(str(tmp_path))
    pid = started_pid(tmp_path, "task")
    old = service_pid()
    stopped = cli("service", "stop")
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: old is not None and is_dead(old), timeout=30, what="the service stopped")
    # Alive, or (on a machine slow enough to take its 10 s to stop the service) ended on its
    # own: a killed task never writes its end.
    ended = (tmp_path / "task.ends").exists()
    assert not is_dead(pid) or ended, "stopping the service killed a running task"
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    assert result.result == 5
    assert starts(tmp_path, "task") == 1


def test_a_sublattice_resumes_where_it_was(tmp_path):
    @ct.lattice
    def inner(log_dir):
        a = logged(log_dir, "inner-a", 2, 1)
        return logged(log_dir, "inner-b", 0.1, a + 1)

    @ct.lattice
    def flow(log_dir):
        return ct.electron(inner)(log_dir)

    dispatch_id = ct.dispatch(flow)(str(tmp_path))
    started_pid(tmp_path, "inner-a")
    kill_service()
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED, result.error
    assert result.result == 2
    assert starts(tmp_path, "inner-a") == 1 and starts(tmp_path, "inner-b") == 1


def test_a_timeout_still_applies_after_a_restart(tmp_path):
    @ct.lattice
    def flow(log_dir):
        return ct.electron(helpers.logged, timeout=3)(log_dir, "slow", 1000, 0)

    dispatch_id = ct.dispatch(flow)(str(tmp_path))
    pid = started_pid(tmp_path, "slow")
    kill_service()
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    slow = result.get_node(0)
    assert slow.status is ct.Status.CANCELLED
    assert slow.cancel_reason == "timeout"
    assert is_dead(pid)


def test_a_service_killed_during_cleanup_keeps_the_outcome_and_cleans_up(tmp_path):
    executor = RecordingExecutor(str(tmp_path), hold="cleanup")

    @ct.lattice
    def flow():
        return ct.electron(lambda: 99, executor=executor)()

    dispatch_id = ct.dispatch(flow)()
    key = f"{dispatch_id[:8]}:0"
    wait_until(lambda: {"node": key, "event": "holding:cleanup-held"} in strip(events(tmp_path)))
    kill_service()
    (tmp_path / "release").write_text("")
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED, result.error
    assert result.result == 99
    mine = [e["event"] for e in events(tmp_path) if e["node"] == key]
    assert mine.count("started") == 1
    # The new service re-attached (to learn what to clean up), then cleaned up; no fetch.
    after = mine[mine.index("reattach:handle") :]
    assert "cleanup" in after and "fetch" not in after
    assert not (tmp_path / f"{dispatch_id}-0").exists(), "cleanup did not finish"


def test_a_stage_cut_short_is_redone_and_the_job_starts_once(tmp_path):
    executor = RecordingExecutor(str(tmp_path), hold="upload")

    @ct.lattice
    def flow():
        return ct.electron(lambda: "done", executor=executor)()

    dispatch_id = ct.dispatch(flow)()
    key = f"{dispatch_id[:8]}:0"
    wait_until(lambda: {"node": key, "event": "holding:upload"} in strip(events(tmp_path)))
    kill_service()
    (tmp_path / "release").write_text("")
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED, result.error
    mine = [e["event"] for e in events(tmp_path) if e["node"] == key]
    assert mine.count("upload") == 2 and mine.count("started") == 1
    assert "reattach:none" in mine


def test_an_executor_that_cannot_reattach_has_its_job_stopped(tmp_path):
    executor = RecordingExecutor(str(tmp_path), can_reattach=False)
    pid_file = tmp_path / "pid"

    def sleeper(path):
        import os as _os
        import time as _time

        Path(path).write_text(str(_os.getpid()))
        _time.sleep(1000)

    @ct.lattice
    def flow(path):
        return ct.electron(sleeper, executor=executor)(path)

    dispatch_id = ct.dispatch(flow)(str(pid_file))
    pid = int(wait_for_file(pid_file))
    kill_service()
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    task = result.get_node(0)
    assert task.status is ct.Status.FAILED
    assert task.cancel_reason == "dispatcher lost"
    assert "cannot re-attach" in task.error and "stopped" in task.error
    assert is_dead(pid)


def strip(found: list[dict]) -> list[dict]:
    return [{"node": e["node"], "event": e["event"]} for e in found]


def test_handles_of_local_tasks_name_their_outcome_directory(tmp_path):
    @ct.lattice
    def flow(log_dir):
        return logged(log_dir, "task", 0.5, 1)

    dispatch_id = ct.dispatch(flow)(str(tmp_path))
    handle = wait_for_handle(dispatch_id, 0)
    assert Path(handle["dir"]).name == f"{dispatch_id}-0"
    wait_until(lambda: Path(handle["dir"]).exists(), 30)  # the task makes it as it starts
    assert oct(Path(handle["dir"]).stat().st_mode & 0o777) == oct(0o700)
    ct.get_result(dispatch_id, wait=True, timeout=60)
    assert not Path(handle["dir"]).exists(), "the task's directory outlived its cleanup"
    assert json.dumps(handle)


def test_a_local_task_of_another_host_is_not_run_again_here(tmp_path):
    # A service sharing a store takes over the dispatch of a host whose service died: that
    # host's local process cannot be watched from here, so the task fails saying so, once.
    from sqlalchemy import text

    from covalent_core.store import open_store

    dispatch_id, handle = orphaned_sleeper(tmp_path, "remote")
    try:
        elsewhere = json.dumps({**handle, "host": "another-host"})
        with open_store().write() as conn:
            conn.execute(
                text(
                    "UPDATE jobs SET handle = :h WHERE job_id = "
                    "(SELECT job_id FROM nodes WHERE dispatch_id = :d AND node_id = 0)"
                ),
                {"h": elsewhere, "d": dispatch_id},
            )
        result = ct.get_result(dispatch_id, wait=True, timeout=120)
        remote = result.get_node(0)
        assert remote.status is ct.Status.FAILED
        assert "another-host" in remote.error and "not run again" in remote.error
        assert starts(tmp_path, "remote") == 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(handle["pgid"], signal.SIGKILL)


def test_a_task_left_frozen_by_a_service_killed_mid_cancel_is_thawed_by_the_next(tmp_path):
    """A cancel freezes the task's cgroup while it collects its processes; a service killed
    in that moment (and a cancel it had not stored yet) leaves the task frozen. The next
    service re-attaches to it and thaws it: it runs to its end, as nobody cancelled it."""
    import pytest

    @ct.lattice
    def flow(log_dir):
        return logged(log_dir, "frozen", 1.0, 7)

    dispatch_id = ct.dispatch(flow)(str(tmp_path))
    started_pid(tmp_path, "frozen")
    cgroup = (ct.get_result(dispatch_id).get_node(0).job_handle or {}).get("cgroup")
    if not cgroup:
        pytest.skip("no cgroup per task here (containment by marker only)")
    Path(cgroup, "cgroup.freeze").write_text("1")  # as the killed service's strike left it
    kill_service()
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED, result.error
    assert result.result == 7 and starts(tmp_path, "frozen") == 1
