"""SSH-specific behaviour against the real sshd: dropped links, bad input, quoting, sharing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import cloudpickle
import psutil
import pytest
from covalent_ssh import SSHExecutor
from covalent_ssh.executor import RUNNER_SOURCE
from probes import job_alive, listing

import covalent_core as ct
from covalent_core.errors import JobLostError
from covalent_core.testing import dispatch_task, wait_until
from covalent_core.testing.contexts import nap as nap_by_value
from covalent_core.testing.contexts import task_context

PYTHON = str(Path(sys.executable).absolute())


@pytest.fixture
def workdir() -> str:
    return f"/tmp/covalent-ssh-tests/{uuid.uuid4().hex[:8]}"


def make(sshd: Any, workdir: str, **overrides: Any) -> SSHExecutor:
    options: dict[str, Any] = {
        "username": "root",
        "hostname": "127.0.0.1",
        "port": sshd.port,
        "ssh_key_file": str(sshd.client_key),
        "known_hosts": str(sshd.known_hosts),
        "remote_workdir": workdir,
        "python_path": PYTHON,
        "cancel_grace": 1.0,
        "connect_timeout": 3.0,
    }
    options.update(overrides)
    return SSHExecutor(**options)


def nap(seconds: float) -> str:
    import time

    time.sleep(seconds)
    return "rested"


def greeting() -> str:
    import os

    return os.environ["GREETING"] + "|" + os.getcwd()


def handle_of(dispatch_id: str) -> str:
    def get() -> str | None:
        value = ct.get_result(dispatch_id).get_node(0).job_handle
        return json.dumps(value, sort_keys=True) if isinstance(value, dict) else value

    return wait_until(get, 60)


def task_process(handle: str) -> psutil.Process:
    """The task's own process: the child of its monitor."""
    monitor = psutil.Process(json.loads(handle)["pid"])
    return wait_until(lambda: (monitor.children() or [None])[0], 30)


# -- a dropped connection --------------------------------------------------------------


def test_a_task_survives_a_dropped_connection_and_is_picked_up_again(sshd, workdir):
    dispatch_id = dispatch_task(nap, make(sshd, workdir), 3.0)
    handle = handle_of(dispatch_id)
    logins = sshd.accepted_logins()
    assert sshd.drop_connections() >= 1
    assert job_alive(handle), "the remote task must not die with the connection"
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == "rested"
    assert sshd.accepted_logins() > logins, "the executor reconnected"
    assert listing(Path(workdir)) == []


def test_a_task_is_cancelled_after_the_server_restarted(sshd, workdir):
    dispatch_id = dispatch_task(nap, make(sshd, workdir), 600.0)
    handle = handle_of(dispatch_id)
    sshd.restart()
    assert job_alive(handle)
    start = time.monotonic()
    ct.cancel(dispatch_id)
    wait_until(lambda: not job_alive(handle), 20)
    print(f"cancel after a restart: job gone in {time.monotonic() - start:.2f} s")
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.get_node(0).status is ct.Status.CANCELLED
    assert listing(Path(workdir)) == []


# -- bad input: a clear error within the connect timeout, FAILED, nothing left -----------


def failed_quickly(dispatch_id: str, limit: float) -> str:
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    node = result.get_node(0)
    assert node.status is ct.Status.FAILED, node.status
    assert node.duration is not None and node.duration < limit, node.duration
    return node.error or ""


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"port": 1}, "cannot connect to root@127.0.0.1:1"),
        ({"ssh_key_file": "OTHER"}, "refused the key"),
        ({"known_hosts": "WRONG"}, "does not match"),
        ({"known_hosts": "EMPTY"}, "is not in"),
        ({"ssh_key_file": "/nonexistent/key"}, "does not exist"),
        ({"python_path": "/nonexistent/python3"}, "was not found on root@127.0.0.1"),
        ({"python_path": "/usr/bin/python3"}, "cannot import cloudpickle"),
    ],
    ids=[
        "wrong-port",
        "refused-key",
        "host-key-mismatch",
        "unknown-host-key",
        "no-key-file",
        "no-remote-python",
        "no-cloudpickle",
    ],
)
def test_bad_input_fails_the_node_clearly_and_leaves_nothing(
    sshd, workdir, tmp_path, overrides, expected
):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    replace = {
        "OTHER": str(sshd.other_key),
        "WRONG": str(sshd.wrong_known_hosts),
        "EMPTY": str(empty),
    }
    overrides = {k: replace.get(v, v) if isinstance(v, str) else v for k, v in overrides.items()}
    executor = make(sshd, workdir, **overrides)
    error = failed_quickly(
        dispatch_task(nap, executor, 0.0), limit=executor.target.connect_timeout + 2
    )
    assert expected in error, error
    assert listing(Path(workdir)) == []


def test_an_unreachable_host_fails_within_the_connect_timeout(sshd, workdir):
    # A non-routable address: the connection attempt gets no answer at all.
    executor = make(sshd, workdir, hostname="10.255.255.1", connect_timeout=2.0)
    error = failed_quickly(dispatch_task(nap, executor, 0.0), limit=5.0)
    assert "cannot connect to root@10.255.255.1" in error, error


def test_an_unknown_host_key_is_accepted_only_on_explicit_opt_in(sshd, workdir, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    executor = make(sshd, workdir, known_hosts=str(empty), accept_unknown_host_key=True)
    result = ct.get_result(dispatch_task(nap, executor, 0.0), wait=True, timeout=60)
    assert result.status is ct.Status.COMPLETED
    # A key that contradicts a known one is refused even then.
    executor = make(
        sshd, workdir, known_hosts=str(sshd.wrong_known_hosts), accept_unknown_host_key=True
    )
    assert "does not match" in failed_quickly(dispatch_task(nap, executor, 0.0), limit=5.0)


def test_a_task_killed_by_someone_else_fails_with_its_signal(sshd, workdir):
    dispatch_id = dispatch_task(nap, make(sshd, workdir), 600.0)
    task_process(handle_of(dispatch_id)).send_signal(signal.SIGKILL)
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    node = result.get_node(0)
    assert node.status is ct.Status.FAILED
    assert "SIGKILL" in (node.error or ""), node.error
    assert listing(Path(workdir)) == []


# -- quoting ---------------------------------------------------------------------------


def test_user_data_reaches_the_remote_shell_quoted(sshd, tmp_path):
    canary = tmp_path / "pwned"
    workdir = f"/tmp/covalent ssh tests/{uuid.uuid4().hex[:6]}; touch {canary}; echo $(id)"
    value = f'it\'s "quoted" $(touch {canary}) `touch {canary}` ; touch {canary}'
    executor = make(sshd, workdir, env={"GREETING": value})
    result = ct.get_result(dispatch_task(greeting, executor), wait=True, timeout=60)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    said, cwd = result.result.split("|")
    assert said == value
    assert cwd.startswith(workdir)
    assert not canary.exists(), "user data was run by the remote shell"
    assert listing(Path(workdir)) == []


# -- sharing one connection ------------------------------------------------------------


def test_tasks_to_one_host_share_one_connection(sshd, workdir):
    executor = make(sshd, workdir)
    # Start the service's connection with one task, then count logins for twenty more.
    ct.get_result(dispatch_task(nap, executor, 0.0), wait=True, timeout=60)
    before = sshd.accepted_logins()
    task = ct.electron(nap, executor=executor)

    @ct.lattice
    def many() -> list[str]:
        return [task(0.2) for _ in range(20)]

    result = ct.get_result(ct.dispatch(many)(), wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED
    assert sshd.accepted_logins() == before, "a task opened its own connection"
    assert os.path.exists(workdir) and listing(Path(workdir)) == []


# -- Covalent's options ------------------------------------------------------------------


def write_here(name: str) -> str:
    import os

    with open(name, "w") as fh:
        fh.write("kept")
    return os.getcwd()


def test_the_task_runs_in_remote_workdir_and_its_files_are_kept(sshd, tmp_path):
    workdir = str(tmp_path / "work")
    cache = str(tmp_path / "cache")
    executor = make(sshd, workdir, remote_cache=cache)
    result = ct.get_result(dispatch_task(write_here, executor, "out.txt"), wait=True, timeout=60)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == workdir
    assert (Path(workdir) / "out.txt").read_text() == "kept"
    assert listing(Path(cache)) == []  # the payload and outcome are gone
    unique = make(sshd, workdir, create_unique_workdir=True)
    result = ct.get_result(dispatch_task(write_here, unique, "mine.txt"), wait=True, timeout=60)
    expected = Path(workdir) / result.dispatch_id / "node_0"
    assert result.result == str(expected) and (expected / "mine.txt").read_text() == "kept"


def test_run_local_on_ssh_fail_runs_the_task_here_when_the_host_is_unreachable(sshd, workdir):
    executor = make(sshd, workdir, port=1, connect_timeout=1.0, run_local_on_ssh_fail=True)
    result = ct.get_result(dispatch_task(nap, executor, 0.0), wait=True, timeout=60)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == "rested"
    assert "local" in result.get_node(0).job_handle
    strict = make(sshd, workdir, port=1, connect_timeout=1.0)
    failed = ct.get_result(dispatch_task(nap, strict, 0.0), wait=True, timeout=60)
    assert failed.status is ct.Status.FAILED


def test_cancel_of_a_task_run_locally_after_ssh_failed(sshd, workdir):
    executor = make(sshd, workdir, port=1, connect_timeout=1.0, run_local_on_ssh_fail=True)
    dispatch_id = dispatch_task(nap, executor, 600.0)
    handle = wait_until(lambda: ct.get_result(dispatch_id).get_node(0).job_handle, 60)
    ct.cancel(dispatch_id)
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.get_node(0).status is ct.Status.CANCELLED
    assert (
        not psutil.pid_exists(handle["local"]["pid"])
        or psutil.Process(handle["local"]["pid"]).status() == psutil.STATUS_ZOMBIE
    )


def test_a_task_started_before_its_handle_was_stored_is_adopted_not_run_again(sshd, workdir):
    """The dispatcher died between starting the remote task and storing its handle."""
    dispatch_id = str(uuid.uuid4())

    async def scenario() -> None:
        dead = make(sshd, workdir)
        task = task_context(dispatch_id, 3, nap_by_value, [1.5])
        await dead.pickle(task)
        await dead.upload(task)
        await dead.provision(task)
        directory = dead.task_dir(task)
        argv = [PYTHON, "-c", RUNNER_SOURCE, "payload", "outcome"]
        job = await dead._conn().watcher(PYTHON).start_task(directory, argv, {})
        await dead.close()  # the dispatcher is gone; its task runs on

        stored: list[str] = []
        nothing = task_context(str(uuid.uuid4()), 3, nap_by_value, [1.5], stored)
        fresh = make(sshd, workdir)
        assert await fresh.reattach(nothing, None) is False  # never started: start it anew
        again = task_context(dispatch_id, 3, nap_by_value, [1.5], stored)
        assert await fresh.reattach(again, None) is True
        assert [json.loads(h)["pid"] for h in stored] == [job["pid"]]
        await fresh.fetch(again)
        assert again.outcome is not None and again.outcome.ok
        assert cloudpickle.loads(again.outcome.output) == "rested"
        await fresh.cleanup(again)
        await fresh.close()

    asyncio.run(scenario())
    assert listing(Path(workdir)) == []


def test_a_task_gone_without_a_trace_is_reported_lost(sshd, workdir):
    dispatch_id = str(uuid.uuid4())

    async def scenario() -> None:
        executor = make(sshd, workdir)
        task = task_context(dispatch_id, 3, nap_by_value, [1.5])
        await executor.pickle(task)
        await executor.upload(task)
        handle = {
            "host": "127.0.0.1",
            "port": sshd.port,
            "user": "root",
            "pid": 999999,
            "pgid": 999999,
            "start_ticks": 1,
            "boot_id": "x",
        }
        with pytest.raises(JobLostError, match="left neither an exit status nor an outcome"):
            await executor.reattach(task, json.dumps(handle))
        await executor.cleanup(task)
        await executor.close()

    asyncio.run(scenario())


# -- processes a task leaves behind ------------------------------------------------------


def daemon(pid_file: str, then_sleep: float) -> int:
    """Double-fork a daemon into a new session (its parent exits at once); its PID."""
    import os
    import time

    read_end, write_end = os.pipe()
    first = os.fork()
    if first == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(write_end, str(os.getpid()).encode())
            for fd in (0, 1, 2):
                os.close(fd)
            time.sleep(600)
        os._exit(0)
    os.close(write_end)
    pid = int(os.read(read_end, 32))
    os.waitpid(first, 0)
    with open(pid_file, "w") as fh:
        fh.write(str(pid))
    time.sleep(then_sleep)
    return pid


def test_a_daemon_dies_when_its_task_returns(sshd, workdir, tmp_path):
    dispatch_id = dispatch_task(daemon, make(sshd, workdir), str(tmp_path / "pid"), 0.0)
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    pid = result.result
    wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", 60)


def test_a_daemon_dies_when_its_task_is_cancelled(sshd, workdir, tmp_path):
    pid_file = tmp_path / "pid"
    dispatch_id = dispatch_task(daemon, make(sshd, workdir), str(pid_file), 600.0)
    pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), 60))
    assert psutil.pid_exists(pid)
    ct.cancel(dispatch_id, wait=True, timeout=60)
    wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", 60)


# -- file transfers with the executor's connection settings ---------------------------


def read_file(files: Any = None) -> str:
    return Path(files[0][1]).read_text()


def test_rsync_strategy_uses_the_executors_verified_settings(
    sshd: Any, workdir: str, tmp_path: Path
) -> None:
    remote = tmp_path / "on the host; $(x).txt"
    remote.write_text("from the ssh host")
    local = tmp_path / "here" / "copy.txt"
    strategy = make(sshd, workdir).rsync()
    task = ct.electron(
        read_file, files=[ct.fs.TransferFromRemote(str(remote), str(local), strategy)]
    )

    @ct.lattice
    def workflow() -> Any:
        return task()

    result = ct.get_result(ct.dispatch(workflow)(), wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == "from the ssh host"
    impostor = make(sshd, workdir, known_hosts=str(sshd.wrong_known_hosts)).rsync()
    task = ct.electron(
        read_file, files=[ct.fs.TransferFromRemote(str(remote), str(local), impostor)]
    )

    @ct.lattice
    def refused() -> Any:
        return task()

    result = ct.get_result(ct.dispatch(refused)(), wait=True, timeout=120)
    assert result.status is ct.Status.FAILED
    assert "HOST IDENTIFICATION HAS CHANGED" in result.get_node(0).error
