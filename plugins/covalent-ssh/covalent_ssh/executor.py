"""SSHExecutor: run each task on a machine reachable over SSH, and stop it there on cancel."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import posixpath
import shutil
import sys
from pathlib import Path
from typing import Any, ClassVar

from covalent_core import config
from covalent_core._file_transfer.strategies import Rsync
from covalent_core.errors import ExecutorConfigError, JobLostError
from covalent_core.sdk import (
    CLOUDPICKLE_PROBE,
    RUNNER_PATH,
    Executor,
    ProcessHandle,
    TaskContext,
    TaskOutcome,
    WorkerPool,
    describe_exit,
    interpreter_error,
    kill_group,
    reattach_worker,
)

from .client import Connection, SSHTarget, connection
from .errors import SSHConnectError

logger = logging.getLogger(__name__)

RUNNER_SOURCE = RUNNER_PATH.read_text()


class SSHExecutor(Executor):
    """Runs tasks on ``hostname`` over one shared SSH connection.

    Options follow Covalent's SSH plugin where the concept is the same: ``username``,
    ``hostname``, ``ssh_key_file``, ``remote_workdir`` (relative to the remote home unless
    absolute), ``python_path``, ``conda_env``, ``poll_freq`` (the longest wait between attempts
    to reach the host again after the link dropped; tasks themselves are watched
    continuously), ``do_cleanup``. Also ``port``, ``known_hosts`` (default
    ``~/.ssh/known_hosts``; host keys are always verified), ``accept_unknown_host_key``
    (explicit opt-in), ``env`` (environment variables for the task), ``connect_timeout``,
    ``retries``, ``cancel_grace`` (seconds between SIGTERM and SIGKILL) and ``max_channels``
    (commands at once on the shared connection; sshd allows 10 sessions by default).
    Covalent's other options keep their meaning: the task runs in ``remote_workdir`` (in
    ``remote_workdir/DISPATCH_ID/node_N`` with ``create_unique_workdir=True``), and what it
    writes there stays; its payload and outcome go in a directory under ``remote_cache``
    (default: ``remote_workdir``), removed after the task; ``run_local_on_ssh_fail=True`` runs
    the task on this machine when the host cannot be reached. ``cache_dir`` is accepted and
    unused (nothing is staged locally).
    The remote machine needs Linux, Python 3 and cloudpickle; nothing else is installed.
    """

    short_name: ClassVar[str] = "ssh"
    cancel_bound: ClassVar[float] = 15.0

    def __init__(
        self,
        username: str | None = None,
        hostname: str = "",
        ssh_key_file: str | None = None,
        remote_workdir: str = ".cache/covalent-core",
        python_path: str = "python3",
        conda_env: str | None = None,
        poll_freq: float = 10.0,
        do_cleanup: bool = True,
        port: int = 22,
        known_hosts: str | None = None,
        accept_unknown_host_key: bool = False,
        env: dict[str, str] | None = None,
        connect_timeout: float = 10.0,
        retries: int = 3,
        cancel_grace: float = 3.0,
        max_channels: int = 6,
        remote_cache: str = "",
        create_unique_workdir: bool = False,
        run_local_on_ssh_fail: bool = False,
        cache_dir: str = "",
    ) -> None:
        super().__init__()
        if not hostname:
            raise ExecutorConfigError("SSHExecutor needs hostname= (the machine to run on)")
        if not remote_workdir or any(c in remote_workdir for c in "\t\n\0"):
            raise ExecutorConfigError(
                "SSHExecutor: remote_workdir must be a non-empty path without tabs or newlines"
            )
        self.target = SSHTarget(
            hostname=hostname,
            port=int(port),
            username=username,
            key_file=ssh_key_file,
            known_hosts=known_hosts,
            accept_unknown_host_key=accept_unknown_host_key,
            connect_timeout=connect_timeout,
            retries=retries,
            max_channels=max_channels,
        )
        self.remote_workdir = remote_workdir
        self.remote_cache = remote_cache or remote_workdir
        self.create_unique_workdir = create_unique_workdir
        self.run_local_on_ssh_fail = run_local_on_ssh_fail
        self.cache_dir = cache_dir
        self._local_pool: WorkerPool | None = None
        self.python_path = python_path
        self.conda_env = conda_env
        self.poll_freq = poll_freq
        self.do_cleanup = do_cleanup
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        self.cancel_grace = cancel_grace
        self._checked = False

    def rsync(self) -> Rsync:
        """A file-transfer strategy to and from this executor's host with its connection
        settings (user, key, port, known hosts: the host key is verified)::

            ct.fs.TransferFromRemote("/data/in.csv", "in.csv", strategy=executor.rsync())
        """
        target = self.target
        return Rsync(
            user=target.username or "",
            host=target.hostname,
            private_key_path=target.key_file,
            port=target.port,
            known_hosts=target.known_hosts,
        )

    def _conn(self) -> Connection:
        conn = connection(self.target)
        conn.reconnect_cap = self.poll_freq
        return conn

    def task_dir(self, task: TaskContext) -> str:
        """The task's remote directory (payload, outcome, output), removed after the task."""
        return posixpath.join(self.remote_cache, f"{task.dispatch_id}-{task.node_id}")

    def workdir(self, task: TaskContext) -> str:
        """Where the task runs: ``remote_workdir`` (or its per-task subdirectory); kept."""
        path = self.remote_workdir
        if self.create_unique_workdir:
            path = posixpath.join(path, task.dispatch_id, f"node_{task.node_id}")
        return path if posixpath.isabs(path) else posixpath.join("~", path)

    def _runner_argv(self) -> list[str]:
        if self.conda_env:
            return ["conda", "run", "--no-capture-output", "-n", self.conda_env, "python"]
        return [self.python_path]

    async def pickle(self, task: TaskContext) -> None:
        """The payload, set to run in the remote working directory."""
        task.payload = task.build_payload(cwd=self.workdir(task))

    async def upload(self, task: TaskContext) -> None:
        """Create the task's directories and copy the payload over SFTP."""
        conn = self._conn()
        directory = self.task_dir(task)
        try:
            await conn.makedirs(directory)
        except SSHConnectError:
            if not self.run_local_on_ssh_fail:
                raise
            logger.warning(
                "%s unreachable: running task %s locally", self.target.describe(), task.node_id
            )
            task.state["local"] = True
            return
        task.state["remote_dir"] = directory
        await conn.makedirs(self.workdir(task).removeprefix("~/"))
        cancelled = lambda: task.cancel_requested  # noqa: E731
        await conn.put(task.payload or b"", posixpath.join(directory, "payload"), cancelled)
        task.check_cancelled("upload")

    async def provision(self, task: TaskContext) -> None:
        """Check once that the remote Python runs and has cloudpickle."""
        if self._checked or task.state.get("local"):
            return
        conn = self._conn()
        where = self.target.describe()
        result = await conn.agent(self.python_path, "check", check=False)
        error = interpreter_error(self.python_path, where, result.exit_status, result.stderr or "")
        if error is None and self.conda_env:
            check = await conn.run([*self._runner_argv(), *CLOUDPICKLE_PROBE], check=False)
            python = f"conda environment {self.conda_env}'s python"
            error = interpreter_error(python, where, check.exit_status, check.stderr or "")
        if error is not None:
            raise error
        self._checked = True

    async def run(self, task: TaskContext) -> None:
        """Start the task detached in its own session, store its handle, watch it end."""
        if task.state.get("local"):
            await self._run_locally(task)
            return
        conn = self._conn()
        directory = self.task_dir(task)
        watcher = conn.watcher(self.python_path)
        argv = [*self._runner_argv(), "-c", RUNNER_SOURCE, "payload", "outcome"]
        job = await watcher.start_task(directory, argv, self.env)
        await task.set_job_handle(self._handle(job))
        await self._wait(task, job)

    def _handle(self, job: dict[str, Any]) -> dict[str, Any]:
        return {
            "host": self.target.hostname,
            "port": self.target.port,
            "user": self.target.username,
            "pid": job["pid"],
            "pgid": job["pgid"],
            "start_ticks": job["start_ticks"],
            "boot_id": job["boot_id"],
        }

    async def _wait(self, task: TaskContext, job: dict[str, Any]) -> str:
        directory = self.task_dir(task)
        watcher = self._conn().watcher(self.python_path)
        status = await watcher.wait_task(directory, job["pid"], job["start_ticks"])
        task.state["exit"] = None if status == "lost" else int(status)
        return status

    def _local_dir(self, task: TaskContext) -> Path:
        return config.tasks_dir() / f"ssh-{task.dispatch_id}-{task.node_id}"

    async def _run_locally(self, task: TaskContext) -> None:
        """``run_local_on_ssh_fail``: the task on this machine, in a killable worker."""
        if self._local_pool is None:
            self._local_pool = WorkerPool(sys.executable, 4)
        payload = task.build_payload()
        directory = self._local_dir(task)

        async def started(handle: ProcessHandle) -> None:
            await task.set_job_handle({"local": {**handle.to_dict(), "dir": str(directory)}})
            task.check_cancelled("run")

        pool = self._local_pool
        task.state["outcome"] = await pool.run(payload, directory, started, self.cancel_grace)

    async def reattach(self, task: TaskContext, job_handle: str | None) -> bool:
        """Take over a task a dead dispatcher started: its remote monitor kept running.

        Without a handle, the task's directory says whether it was started (``job.json``,
        written by the idempotent start): if so it is adopted, else it is started anew.
        """
        if job_handle is not None and "local" in json.loads(job_handle):
            local = json.loads(job_handle)["local"]
            task.state["local"] = True
            outcome = await reattach_worker(
                ProcessHandle.from_json(json.dumps(local)), Path(local["dir"])
            )
            if outcome is None:
                return False
            task.state["outcome"] = outcome
            return True
        conn = self._conn()
        directory = self.task_dir(task)
        if job_handle is None:
            text = await conn.read(posixpath.join(directory, "job.json"))
            if text is None:
                return False
            job = json.loads(text)
            await task.set_job_handle(self._handle(job))
        else:
            job = json.loads(job_handle)
            self._check_host(job)
        task.state["remote_dir"] = directory
        lost = await self._wait(task, job) == "lost"
        if lost and await conn.read(posixpath.join(directory, "outcome")) is None:
            raise JobLostError(
                f"process {job['pid']} on {self.target.describe()} is gone and left neither "
                f"an exit status nor an outcome in {directory}"
            )
        return True

    async def fetch(self, task: TaskContext) -> None:
        """Read the outcome, stdout and stderr back over SFTP."""
        if task.state.get("local"):
            task.outcome = task.state.pop("outcome", None)
            return
        conn = self._conn()
        directory = self.task_dir(task)
        out, err, outcome = [
            await conn.read(posixpath.join(directory, name))
            for name in ("stdout", "stderr", "outcome")
        ]
        task.outcome = TaskOutcome.from_files(outcome, out, err, lambda: self._died(task))

    def _died(self, task: TaskContext) -> str:
        code = task.state.get("exit")
        message = describe_exit(code).replace("the task's process", "the remote task's process")
        if code is None:
            message += " (its monitor was killed too, e.g. by SIGKILL to the process group)"
        return f"{message} on {self.target.describe()}"

    async def cleanup(self, task: TaskContext) -> None:
        """Keep what a stopped task printed; remove the task's remote directory (unless
        ``do_cleanup=False``) or local one."""
        if task.state.get("local"):
            await asyncio.to_thread(shutil.rmtree, self._local_dir(task), True)
        if "remote_dir" not in task.state:
            return
        if task.outcome is None:  # cancelled or stopped: its output so far is kept
            with contextlib.suppress(Exception):
                out, err = [
                    await self._conn().read(posixpath.join(task.state["remote_dir"], name))
                    for name in ("stdout", "stderr")
                ]
                task.streams = TaskOutcome.texts(out, err)
        if self.do_cleanup:
            await self._conn().remove_tree(task.state["remote_dir"])

    async def cancel(self, task_metadata: dict[str, Any], job_handle: str) -> bool:
        """Kill the remote process group (SIGTERM, grace, SIGKILL), checking its start time."""
        handle = json.loads(job_handle)
        if "local" in handle:
            local = ProcessHandle.from_json(json.dumps(handle["local"]))
            return await asyncio.to_thread(kill_group, local, self.cancel_grace)
        self._check_host(handle)
        args = [str(handle["pid"]), str(handle["start_ticks"]), handle["boot_id"]]
        # A failure raises with the agent's stderr: the dispatcher records it and retries.
        await self._conn().agent(self.python_path, "kill", *args, str(self.cancel_grace))
        return True

    async def read_output(
        self, task_metadata: dict[str, Any], job_handle: str, stream: str
    ) -> str | None:
        """The task's ``stdout`` or ``stderr`` file as it is now: in its remote directory
        (over SFTP), or its local one when it ran here (``run_local_on_ssh_fail``)."""
        handle = json.loads(job_handle)
        task = TaskContext.of(task_metadata, self.short_name)
        if "local" in handle:
            path = self._local_dir(task) / stream
            data = await asyncio.to_thread(lambda: path.read_bytes() if path.exists() else None)
        else:
            self._check_host(handle)
            data = await self._conn().read(posixpath.join(self.task_dir(task), stream))
        return None if data is None else data.decode(errors="replace")

    def _check_host(self, handle: dict[str, Any]) -> None:
        target = self.target
        if (handle["host"], handle["port"]) != (target.hostname, target.port):
            raise ExecutorConfigError(
                f"job handle is for {handle['host']}:{handle['port']}, but this executor "
                f"connects to {target.describe()}"
            )

    async def close(self) -> None:
        """Close the shared connection (a new one opens on next use)."""
        await self._conn().close()
        if self._local_pool is not None:
            await self._local_pool.close()
