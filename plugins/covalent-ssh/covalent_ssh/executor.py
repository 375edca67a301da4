"""SSHExecutor: run each task on a machine reachable over SSH, and stop it there on cancel."""

from __future__ import annotations

import json
import posixpath
from typing import Any, ClassVar

from covalent_core.errors import ExecutorConfigError
from covalent_core.executors import (
    RUNNER_PATH,
    Executor,
    TaskContext,
    TaskOutcome,
    describe_exit,
)

from .transport import Connection, SSHTarget, connection

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
        self.python_path = python_path
        self.conda_env = conda_env
        self.poll_freq = poll_freq
        self.do_cleanup = do_cleanup
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        self.cancel_grace = cancel_grace
        self._checked = False

    def _conn(self) -> Connection:
        conn = connection(self.target)
        conn.reconnect_cap = self.poll_freq
        return conn

    def task_dir(self, task: TaskContext) -> str:
        """The task's remote directory."""
        return posixpath.join(self.remote_workdir, f"{task.dispatch_id}-{task.node_id}")

    def _runner_argv(self) -> list[str]:
        if self.conda_env:
            return ["conda", "run", "--no-capture-output", "-n", self.conda_env, "python"]
        return [self.python_path]

    async def pickle(self, task: TaskContext) -> None:
        """The payload, set to run in the task's remote directory (where the runner starts)."""
        task.payload = task.build_payload(cwd=".")

    async def upload(self, task: TaskContext) -> None:
        """Create the task's directory and copy the payload into it over SFTP."""
        conn = self._conn()
        directory = self.task_dir(task)
        task.state["remote_dir"] = directory
        await conn.makedirs(directory)
        cancelled = lambda: task.cancel_requested  # noqa: E731
        await conn.put(task.payload or b"", posixpath.join(directory, "payload"), cancelled)
        task.check_cancelled("upload")

    async def provision(self, task: TaskContext) -> None:
        """Check once that the remote Python runs and has cloudpickle."""
        if self._checked:
            return
        conn = self._conn()
        where = self.target.describe()
        result = await conn.agent(self.python_path, "check", check=False)
        if result.exit_status == 127:
            raise ExecutorConfigError(
                f"python_path {self.python_path!r} was not found on {where}; give the remote "
                "interpreter's path (e.g. python_path='/usr/bin/python3')"
            )
        if result.exit_status == 3:
            raise ExecutorConfigError(
                f"{self.python_path!r} on {where} cannot import cloudpickle; install it there "
                f"(`{self.python_path} -m pip install cloudpickle`) or choose another python_path"
            )
        if result.exit_status != 0:
            raise ExecutorConfigError(
                f"{self.python_path!r} on {where} failed: {(result.stderr or '').strip()}"
            )
        if self.conda_env:
            probe = [*self._runner_argv(), "-c", "import cloudpickle"]
            check = await conn.run(probe, check=False)
            if check.exit_status != 0:
                raise ExecutorConfigError(
                    f"conda environment {self.conda_env!r} on {where} cannot run cloudpickle: "
                    f"{(check.stderr or '').strip()}"
                )
        self._checked = True

    async def run(self, task: TaskContext) -> None:
        """Start the task detached in its own session, store its handle, watch it end."""
        conn = self._conn()
        directory = self.task_dir(task)
        watcher = conn.watcher(self.python_path)
        argv = [*self._runner_argv(), "-c", RUNNER_SOURCE, "payload", "outcome"]
        job = await watcher.start_task(directory, argv, self.env)
        handle = {
            "host": self.target.hostname,
            "port": self.target.port,
            "user": self.target.username,
            "pid": job["pid"],
            "pgid": job["pgid"],
            "start_ticks": job["start_ticks"],
            "boot_id": job["boot_id"],
        }
        await task.set_job_handle(handle)
        status = await watcher.wait_task(directory, job["pid"], job["start_ticks"])
        task.state["exit"] = None if status == "lost" else int(status)

    async def fetch(self, task: TaskContext) -> None:
        """Read the outcome, stdout and stderr back over SFTP."""
        conn = self._conn()
        directory = self.task_dir(task)
        out = await conn.read(posixpath.join(directory, "stdout"))
        err = await conn.read(posixpath.join(directory, "stderr"))
        stdout = (out or b"").decode(errors="replace")
        stderr = (err or b"").decode(errors="replace")
        outcome = await conn.read(posixpath.join(directory, "outcome"))
        if outcome is not None:
            task.outcome = TaskOutcome.from_runner(outcome, stdout, stderr)
            return
        code = task.state.get("exit")
        message = describe_exit(code).replace("the task's process", "the remote task's process")
        if code is None:
            message += " (its monitor was killed too, e.g. by SIGKILL to the process group)"
        task.outcome = TaskOutcome.died(f"{message} on {self.target.describe()}", stdout, stderr)

    async def cleanup(self, task: TaskContext) -> None:
        """Remove the task's remote directory (unless ``do_cleanup=False``)."""
        if self.do_cleanup and "remote_dir" in task.state:
            await self._conn().remove_tree(task.state["remote_dir"])

    async def cancel(self, task_metadata: dict[str, Any], job_handle: str) -> bool:
        """Kill the remote process group (SIGTERM, grace, SIGKILL), checking its start time."""
        handle = json.loads(job_handle)
        target = self.target
        if (handle["host"], handle["port"]) != (target.hostname, target.port):
            raise ExecutorConfigError(
                f"job handle is for {handle['host']}:{handle['port']}, but this executor "
                f"connects to {target.describe()}"
            )
        args = [str(handle["pid"]), str(handle["start_ticks"]), handle["boot_id"]]
        # A failure raises with the agent's stderr: the dispatcher records it and retries.
        await self._conn().agent(self.python_path, "kill", *args, str(self.cancel_grace))
        return True

    async def close(self) -> None:
        """Close the shared connection (a new one opens on next use)."""
        await self._conn().close()
