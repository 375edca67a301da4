"""The cancellation contract with the local executor: observable on the machine itself."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from helpers import node, wait_for_file, wait_for_handle, wait_until

import covalent_core as ct
from covalent_core.sdk.processes import ProcessHandle, is_dead
from covalent_core.store import open_store


@ct.electron
def spawn_tree_and_sleep(pid_file, ignore_term=False):
    """Start a child that starts a grandchild, write all pids, then sleep."""
    import os as _os
    import signal as _signal
    import subprocess as _sp
    import time as _time

    if ignore_term:
        _signal.signal(_signal.SIGTERM, _signal.SIG_IGN)
    child = _sp.Popen(["sh", "-c", "sleep 1000 & echo $! > " + pid_file + ".grandchild; wait"])
    _time.sleep(0.2)
    with open(pid_file + ".tmp", "w") as fh:
        fh.write(f"{_os.getpid()} {child.pid}")
    _os.rename(pid_file + ".tmp", pid_file)
    _time.sleep(1000)
    return "never"


@ct.electron
def inc(x):
    return x + 1


@ct.electron
def nap(seconds):
    import time as _time

    _time.sleep(seconds)
    return seconds


def _pids(pid_file) -> list[int]:
    task, child = (int(p) for p in wait_for_file(pid_file).split())
    grandchild = int(wait_for_file(pid_file.with_name(pid_file.name + ".grandchild")))
    return [task, child, grandchild]


def _running_tree(tmp_path) -> tuple[str, list[int]]:
    """Dispatch one task that starts a process tree; return the dispatch and the tree's pids."""
    pid_file = tmp_path / "pids"

    @ct.lattice
    def flow():
        return spawn_tree_and_sleep(str(pid_file))

    return ct.dispatch(flow)(), _pids(pid_file)


def test_cancel_running_task_kills_process_group_and_spares_independent_branch(tmp_path):
    pid_file = tmp_path / "pids"

    @ct.lattice
    def flow():
        slow = spawn_tree_and_sleep(str(pid_file))
        after = inc(slow)
        independent = inc(nap(1.0))
        return [after, independent]

    dispatch_id = ct.dispatch(flow)()
    pids = _pids(pid_file)
    report = ct.cancel(dispatch_id, task_ids=0)
    assert report.requested == [0]
    # 2: inc(slow); 6: the result node (it waits for node 0); 7: the returned list
    assert report.downstream == [2, 6, 7]
    wait_until(lambda: all(is_dead(p) for p in pids), timeout=10)
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.status is ct.Status.CANCELLED
    killed = result.get_node(0)
    assert killed.status is ct.Status.CANCELLED
    assert killed.cancel_reason == "user"
    assert killed.cancel_stage == "run"
    downstream = result.get_node(2)
    assert downstream.status is ct.Status.CANCELLED
    assert downstream.cancel_reason == "upstream cancelled"
    assert downstream.started_at is None  # never started
    independent = [n for n in result.tasks if n.name == "inc"][-1]
    assert independent.status is ct.Status.COMPLETED
    assert independent.output == 2.0


def test_task_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path):
    pid_file = tmp_path / "pids"
    executor = ct.LocalExecutor(cancel_grace=0.5)
    stubborn = ct.electron(spawn_tree_and_sleep.function, executor=executor)

    @ct.lattice
    def flow():
        return stubborn(str(pid_file), ignore_term=True)

    dispatch_id = ct.dispatch(flow)()
    pids = _pids(pid_file)
    time.sleep(0.1)
    start = time.monotonic()
    ct.cancel(dispatch_id)
    wait_until(lambda: all(is_dead(p) for p in pids), timeout=10)
    assert time.monotonic() - start >= 0.4  # SIGTERM was ignored; SIGKILL came after grace
    assert ct.get_result(dispatch_id, wait=True, timeout=30).status is ct.Status.CANCELLED


@contextlib.contextmanager
def store_refusing_writes() -> Iterator[None]:
    """Hold the store's write lock (SQLite), or a lock on its dispatches table that every
    cancel request needs (PostgreSQL): nothing the service stores can commit meanwhile."""
    store = open_store()
    if store.sqlite_path is not None:
        conn = sqlite3.connect(store.sqlite_path, isolation_level=None, timeout=60)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
        finally:
            conn.close()  # rolls the empty transaction back
    else:
        with store.engine.connect() as conn, conn.begin():
            conn.exec_driver_sql("LOCK TABLE dispatches IN EXCLUSIVE MODE")
            yield


@pytest.mark.parametrize("task_ids", [None, [0]], ids=["whole dispatch", "named task"])
def test_a_cancel_stops_its_running_task_before_the_request_is_stored(tmp_path, task_ids):
    dispatch_id, pids = _running_tree(tmp_path)
    with store_refusing_writes():
        cancelling = threading.Thread(
            target=ct.cancel, args=(dispatch_id,), kwargs={"task_ids": task_ids}, daemon=True
        )
        cancelling.start()
        # The request cannot be stored while the lock is held: the kill did not wait for it.
        wait_until(lambda: all(is_dead(p) for p in pids), timeout=20)
        assert cancelling.is_alive(), "ct.cancel returned before its request could be stored"
    cancelling.join(60)
    assert not cancelling.is_alive()
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.status is ct.Status.CANCELLED
    assert result.get_node(0).cancel_reason == "user"


def test_a_cancel_refused_for_an_unknown_task_stops_nothing(tmp_path):
    dispatch_id, pids = _running_tree(tmp_path)
    with pytest.raises(ct.TaskNotFoundError, match="99"):
        ct.cancel(dispatch_id, task_ids=[0, 99])
    with pytest.raises(TypeError, match="task_ids must be"):
        ct.cancel(dispatch_id, task_ids=[0, "1"])
    time.sleep(0.5)  # a kill started by either would have landed by now
    assert not any(is_dead(p) for p in pids)
    assert ct.get_result(dispatch_id).get_node(0).status is ct.Status.RUNNING
    ct.cancel(dispatch_id, wait=True, timeout=60)


def test_stale_handle_never_kills_a_process_that_reused_the_pid():
    bystander = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        real = ProcessHandle.of(bystander.pid)
        stale = ProcessHandle(real.host, real.pid, real.pgid, real.start_time - 100.0)
        import asyncio

        confirmed = asyncio.run(
            ct.LocalExecutor().cancel({}, __import__("json").dumps(stale.to_dict()))
        )
        assert confirmed is True  # the handle's process is gone...
        time.sleep(0.2)
        assert bystander.poll() is None  # ...and the unrelated process lives
    finally:
        bystander.kill()
        bystander.wait()


def test_cancel_from_the_cli_in_another_process_after_the_dispatcher_exited(tmp_path):
    pid_file = tmp_path / "pids"
    script = tmp_path / "submit.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
        "import covalent_core as ct\n"
        "from test_cancel import spawn_tree_and_sleep, inc\n"
        "@ct.lattice\n"
        "def flow():\n"
        f"    return inc(spawn_tree_and_sleep({str(pid_file)!r}))\n"
        "print(ct.dispatch(flow)())\n"
    )
    dispatch_id = subprocess.run(
        [sys.executable, str(script)], check=True, capture_output=True, text=True
    ).stdout.strip()
    pids = _pids(pid_file)  # the dispatching process has exited; the task runs on
    cli = subprocess.run(
        [sys.executable, "-m", "covalent_core.cli", "cancel", dispatch_id, "--task", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "requested: 0 (spawn_tree_and_sleep)" in cli.stdout
    assert "downstream, will not run: 2 (inc), 3 (:postprocess:reconstruct)" in cli.stdout
    wait_until(lambda: all(is_dead(p) for p in pids), timeout=10)
    result = ct.get_result(dispatch_id, wait=True, timeout=30)
    assert [n.status for n in result.tasks] == [ct.Status.CANCELLED] * 3


def test_cancel_whole_dispatch_before_anything_starts_starts_nothing(tmp_path):
    marker = tmp_path / "ran"

    @ct.electron
    def touch(i):
        with open(f"{marker}-{i}", "w") as fh:
            fh.write("x")

    @ct.lattice
    def flow():
        gate = nap(2.0)
        return [ct.wait(touch(i), [gate]) for i in range(50)]

    dispatch_id = ct.dispatch(flow)()
    report = ct.cancel(dispatch_id)
    assert report.whole_dispatch
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.status is ct.Status.CANCELLED
    assert not list(tmp_path.glob("ran-*"))
    assert all(n.status is ct.Status.CANCELLED for n in result.tasks)


def test_cancel_is_idempotent_and_finished_work_is_reported_and_kept():
    @ct.lattice
    def flow():
        return inc(1)

    result = ct.dispatch_sync(flow, timeout=60)()
    report = ct.cancel(result.dispatch_id, task_ids=[0])
    assert not report.changed_anything
    assert report.already_finished == {0: ct.Status.COMPLETED}
    assert "already finished" in str(report)
    again = ct.cancel(result.dispatch_id)
    assert not again.changed_anything
    after = ct.get_result(result.dispatch_id)
    assert after.status is ct.Status.COMPLETED and after.result == 2


def test_double_cancel_of_a_running_task_changes_nothing_more(tmp_path):
    dispatch_id, pids = _running_tree(tmp_path)
    ct.cancel(dispatch_id, task_ids=[0])
    ct.cancel(dispatch_id, task_ids=[0])
    wait_until(lambda: all(is_dead(p) for p in pids), timeout=10)
    result = ct.get_result(dispatch_id, wait=True, timeout=30)
    assert result.get_node(0).status is ct.Status.CANCELLED
    third = ct.cancel(dispatch_id, task_ids=[0])
    assert not third.changed_anything


def test_unknown_dispatch_and_task_ids_are_clear_errors():
    with pytest.raises(ct.DispatchNotFoundError, match="no dispatch 'no-such-id'"):
        ct.cancel("no-such-id")

    @ct.lattice
    def flow():
        return inc(1)

    dispatch_id = ct.dispatch_sync(flow, timeout=60)().dispatch_id
    with pytest.raises(
        ct.TaskNotFoundError, match=r"task id\(s\) 99 are not nodes .* nodes are 0-2"
    ):
        ct.cancel(dispatch_id, task_ids=[99])


def test_timeout_stops_the_task_and_its_dependents_never_run(tmp_path):
    pid_file = tmp_path / "pids"
    limited = ct.electron(spawn_tree_and_sleep.function, timeout=1.0)

    @ct.lattice
    def flow():
        return inc(limited(str(pid_file)))

    dispatch_id = ct.dispatch(flow)()
    pids = _pids(pid_file)
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert all(is_dead(p) for p in pids)
    first = result.get_node(0)
    assert first.status is ct.Status.CANCELLED
    assert first.cancel_reason == "timeout"
    assert "timed out after 1 s" in first.error
    second = result.get_node(2)
    assert second.status is ct.Status.CANCELLED and second.started_at is None


def test_task_handle_is_stored_before_its_code_runs():
    @ct.electron
    def my_handle():
        import os as _os

        import covalent_core as _ct

        for run in _ct.list_dispatches(5):
            res = _ct.get_result(run.dispatch_id)
            for n in res.nodes:
                if n.name == "my_handle" and n.status is _ct.Status.RUNNING:
                    # The handle names this task's own process and group, and the worker
                    # that forked it.
                    handle = n.job_handle
                    return (
                        _os.getpid() == handle["pid"]
                        and _os.getpgid(0) == handle["pgid"]
                        and _os.getppid() == handle["parent"]
                    )
        return False

    @ct.lattice
    def flow():
        return my_handle()

    assert ct.dispatch_sync(flow, timeout=60)().result is True


def test_node_helper_reads_live_state(tmp_path):
    pid_file = tmp_path / "pids"

    @ct.lattice
    def flow():
        return spawn_tree_and_sleep(str(pid_file))

    dispatch_id = ct.dispatch(flow)()
    wait_for_handle(dispatch_id, 0)
    assert node(dispatch_id, 0).status is ct.Status.RUNNING
    ct.cancel(dispatch_id, wait=True, timeout=30)
    assert node(dispatch_id, 0).status is ct.Status.CANCELLED


def test_ready_tasks_waiting_for_a_busy_executor_are_cancelled_without_starting(tmp_path):
    """Ready but queued behind the executor's one slot: cancelled at once, none ever starts."""
    one_slot = ct.LocalExecutor(max_workers=1)
    hold = ct.electron(spawn_tree_and_sleep.function, executor=one_slot)
    pid_file = tmp_path / "pids"

    @ct.electron(executor=one_slot)
    def touch(i):
        with open(f"{tmp_path}/ran-{i}", "w") as fh:
            fh.write("x")

    @ct.lattice
    def flow():
        return [hold(str(pid_file)), *[touch(i) for i in range(300)]]

    dispatch_id = ct.dispatch(flow)()
    pids = _pids(pid_file)  # the one slot is taken; the 300 others are ready and waiting
    ct.cancel(dispatch_id, wait=True, timeout=120)
    result = ct.get_result(dispatch_id)
    assert result.status is ct.Status.CANCELLED
    assert not list(tmp_path.glob("ran-*"))
    waiting = [n for n in result.tasks if n.name == "touch"]
    assert len(waiting) == 300 and all(n.status is ct.Status.CANCELLED for n in waiting)
    assert all(n.started_at is None for n in waiting)
    wait_until(lambda: all(is_dead(p) for p in pids), 30)
