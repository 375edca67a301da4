"""SlurmExecutor: each task a Slurm batch job, submitted with sbatch and stopped with scancel."""

from __future__ import annotations

import asyncio
import contextlib
import json
import posixpath
from typing import Any, ClassVar

from covalent_core.errors import ExecutorConfigError, JobLostError
from covalent_core.sdk import (
    CLOUDPICKLE_PROBE,
    RUNNER_PATH,
    Executor,
    TaskContext,
    TaskOutcome,
    interpreter_error,
    wait_until_gone,
)

from .client import LocalShell, RemoteShell, Shell, final_state, poller, slurm
from .errors import SlurmError
from .packing import Packer
from .script import batch_script, sbatch_option
from .states import describe_end

RUNNER_SOURCE = RUNNER_PATH.read_bytes()


class SlurmExecutor(Executor):
    """Runs each task as a Slurm batch job, on this login node or on one reached over SSH.

    Options follow Covalent's Slurm plugin where the concept is the same: ``username``,
    ``address`` (the login node; empty: run Slurm's commands on this machine), ``ssh_key_file``,
    ``options`` (any ``#SBATCH`` option: partition, account, qos, time, nodes, cpus-per-task,
    mem, gres, ...), ``variables`` (environment of the job), ``prerun_commands``,
    ``postrun_commands``, ``conda_env``, ``remote_workdir`` (on the shared file system),
    ``use_srun``, ``srun_options``, ``poll_freq`` (seconds between the batched ``squeue``
    calls), ``cleanup``. Also ``ssh_port``, ``known_hosts``, ``accept_unknown_host_key``,
    ``python_path`` (the job's interpreter; needs cloudpickle), ``slurm_conf`` (``SLURM_CONF``
    for every Slurm command), ``slurm_path`` (the directory of Slurm's commands when they are
    not on PATH) and ``cluster_name`` (asked of Slurm when not given). ``pack=True`` runs a
    dispatch's tasks one after another inside one Slurm job (see :mod:`.packing`), which
    ends ``pack_idle`` seconds after its last task.

    Covalent's other options keep their meaning: ``cert_file`` (an SSH certificate for the
    key), ``srun_append`` (a command placed between ``srun`` and the task, split into words),
    ``create_unique_workdir`` (the task runs in ``remote_workdir/DISPATCH_ID/node_N`` instead
    of ``remote_workdir``; what it writes there is kept). ``cache_dir`` is accepted and unused
    (nothing is staged locally); ``sshproxy`` (NERSC's key service) is refused with advice.
    """

    short_name: ClassVar[str] = "slurm"
    cancel_bound: ClassVar[float] = 20.0

    def __init__(
        self,
        username: str | None = None,
        address: str | None = None,
        ssh_key_file: str | None = None,
        options: dict[str, Any] | None = None,
        variables: dict[str, Any] | None = None,
        prerun_commands: list[str] | None = None,
        postrun_commands: list[str] | None = None,
        conda_env: str | None = None,
        remote_workdir: str = "covalent-workdir",
        use_srun: bool = True,
        srun_options: dict[str, Any] | None = None,
        poll_freq: float = 5.0,
        cleanup: bool = True,
        ssh_port: int = 22,
        known_hosts: str | None = None,
        accept_unknown_host_key: bool = False,
        python_path: str = "python3",
        slurm_conf: str | None = None,
        cluster_name: str | None = None,
        slurm_path: str | None = None,
        pack: bool = False,
        pack_idle: float = 10.0,
        cert_file: str | None = None,
        create_unique_workdir: bool = False,
        srun_append: str | None = None,
        cache_dir: str | None = None,
        sshproxy: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if sshproxy:
            raise ExecutorConfigError(
                "SlurmExecutor: sshproxy is not supported; get the key and certificate with "
                "NERSC's `sshproxy` command yourself and pass ssh_key_file= and cert_file="
            )
        self.create_unique_workdir = create_unique_workdir
        self.srun_append = srun_append
        self.cache_dir = cache_dir
        self.options = dict(options or {})
        for name, value in self.options.items():
            sbatch_option(name, value)  # a bad option fails now, not at submission
        self.variables = dict(variables or {})
        self.prerun_commands = list(prerun_commands or [])
        self.postrun_commands = list(postrun_commands or [])
        self.conda_env = conda_env
        self.remote_workdir = remote_workdir
        self.use_srun = use_srun
        self.srun_options = dict(srun_options or {})
        if poll_freq <= 0:
            raise ExecutorConfigError(f"poll_freq must be positive, not {poll_freq}")
        self.poll_freq = poll_freq
        self.do_cleanup = cleanup
        self.python_path = python_path
        self.cluster_name = cluster_name
        self.slurm_path = slurm_path
        env = {"SLURM_CONF": slurm_conf} if slurm_conf else {}
        self.address = address
        self.shell: Shell
        if address:
            ssh = {
                "hostname": address,
                "port": int(ssh_port),
                "username": username,
                "key_file": ssh_key_file,
                "cert_file": cert_file,
                "known_hosts": known_hosts,
                "accept_unknown_host_key": accept_unknown_host_key,
            }
            self.shell = RemoteShell(ssh, env, slurm_path)
            target: Any = self.shell.target
        else:
            self.shell = LocalShell(env, slurm_path)
            target = None
        self._key = (target, slurm_conf, slurm_path)
        self.pack_idle = pack_idle
        self.packer = Packer(self) if pack else None
        self._checked = False

    def task_dir(self, task: TaskContext) -> str:
        """The task's directory on the cluster's shared file system."""
        return posixpath.join(self.remote_workdir, f"{task.dispatch_id}-{task.node_id}")

    def workdir(self, task: TaskContext) -> str:
        """Where the task runs, relative to its own directory (the job's working directory)."""
        if self.create_unique_workdir:
            return posixpath.join("..", task.dispatch_id, f"node_{task.node_id}")
        return ".."

    async def pickle(self, task: TaskContext) -> None:
        """The payload, set to run in ``remote_workdir`` (or its per-task subdirectory)."""
        task.payload = task.build_payload(cwd=self.workdir(task))

    async def upload(self, task: TaskContext) -> None:
        """Create the task's directory; copy the payload, the runner and the batch script."""
        directory = self.task_dir(task)
        await self.shell.makedirs(directory)
        task.state["dir"] = directory
        if self.create_unique_workdir:
            await self.shell.makedirs(
                posixpath.normpath(posixpath.join(directory, self.workdir(task)))
            )
        cancelled = lambda: task.cancel_requested  # noqa: E731
        await self.shell.put(task.payload or b"", posixpath.join(directory, "payload"), cancelled)
        task.check_cancelled("upload")
        await self.shell.put(RUNNER_SOURCE, posixpath.join(directory, "runner.py"))
        if self.packer is None:
            await self.shell.put(self.script().encode(), posixpath.join(directory, "job.sh"))

    def script(self, command: list[str] | None = None) -> str:
        """The batch script every task of this executor runs (or ``command`` instead)."""
        return batch_script(
            options=self.options,
            variables=self.variables,
            prerun_commands=self.prerun_commands,
            postrun_commands=self.postrun_commands,
            conda_env=self.conda_env,
            python_path=self.python_path,
            use_srun=self.use_srun,
            srun_options=self.srun_options,
            srun_append=self.srun_append,
            command=command,
        )

    async def _check(self) -> None:
        """Once: the cluster answers, its name, and the job's Python has cloudpickle."""
        if self._checked:
            return
        if self.cluster_name is None:
            config = await slurm(self.shell, ["scontrol", "show", "config"])
            names = [
                ln.split("=", 1)[1].strip()
                for ln in config.splitlines()
                if ln.startswith("ClusterName")
            ]
            self.cluster_name = names[0] if names else "unknown"
        if not self.conda_env:
            probe = await self.shell.run([self.python_path, *CLOUDPICKLE_PROBE])
            where = self.shell.describe()
            error = interpreter_error(self.python_path, where, probe.returncode, probe.stderr)
            if error is not None:
                raise error
        self._checked = True

    async def provision(self, task: TaskContext) -> None:
        """Submit the job with ``sbatch --parsable``; its handle is stored at once."""
        await self._check()
        task.check_cancelled("provision")
        # Once sbatch has run, the job's handle must be stored even if a cancel interrupts
        # this stage: the submission finishes (storing the handle starts the cancel of the
        # job) before the cancellation goes on.
        work = self._submit(task) if self.packer is None else self.packer.provision(task)
        submit = asyncio.ensure_future(work)
        try:
            await asyncio.shield(submit)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await submit
            raise

    @staticmethod
    def job_name(task: TaskContext) -> str:
        """The task's job name (short enough for ``squeue``'s default column)."""
        return f"covalent-{task.dispatch_id[:8]}-{task.node_id}"

    @staticmethod
    def job_comment(task: TaskContext) -> str:
        """The task's job comment: its full ids, by which a new dispatcher finds the job."""
        return f"covalent-core:{task.dispatch_id}:{task.node_id}"

    async def _submit(self, task: TaskContext) -> None:
        directory = task.state["dir"]
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name={self.job_name(task)}",
            f"--comment={self.job_comment(task)}",
            f"--chdir={directory}",
            "--output=stdout",
            "--error=stderr",
            posixpath.join(directory, "job.sh"),
        ]
        job_id = (await slurm(self.shell, argv)).strip().split(";")[0]
        task.state["job_id"] = job_id
        await task.set_job_handle(self.handle(job_id))

    def handle(self, job_id: str, **extra: Any) -> dict[str, Any]:
        """The job handle: cluster, job id (and login node when reached over SSH)."""
        handle = {"cluster": self.cluster_name, "job_id": job_id, **extra}
        if self.address:
            handle["address"] = self.address
        return handle

    async def run(self, task: TaskContext) -> None:
        """Wait for the job to end; all of a dispatcher's jobs share one squeue per interval."""
        if self.packer is not None:
            await self.packer.run(task)
            return
        end = await poller(self._key, self.shell, self.poll_freq).wait(task.state["job_id"])
        task.state["end"] = end

    async def reattach(self, task: TaskContext, job_handle: str | None) -> bool:
        """Wait again for the job a dead dispatcher submitted; find it if no handle was stored.

        Without a handle the job is looked up by its name and comment (``squeue``, then
        ``sacct``): found, it is adopted; not found, it was never submitted (False).
        """
        task.state["dir"] = self.task_dir(task)
        if job_handle is None:
            if self.packer is not None:
                return await self.packer.adopt(task)
            job_id = await self._find_job(task)
            if job_id is None:
                return False
            await task.set_job_handle(self.handle(job_id))
            handle: dict[str, Any] = {"job_id": job_id}
        else:
            handle = json.loads(job_handle)
        if "pack" in handle:
            assert self.packer is not None, "a packed job's handle needs pack=True"
            await self.packer.reattach(task, handle)
        else:
            task.state["job_id"] = str(handle["job_id"])
            await self.run(task)
        if task.state["end"].state == "LOST" and await self._no_outcome(task):
            raise JobLostError(
                f"Slurm on {self.shell.describe()} no longer knows job {task.state['job_id']} "
                f"and {task.state['dir']} holds no outcome"
            )
        return True

    async def _no_outcome(self, task: TaskContext) -> bool:
        return await self.shell.read(posixpath.join(task.state["dir"], "outcome")) is None

    async def _find_job(self, task: TaskContext) -> str | None:
        """The id of the job submitted for this task, by name and comment; None: none was."""
        await self._check()
        name, comment = self.job_name(task), self.job_comment(task)
        argv = ["squeue", "--noheader", "--states=all", "--format=%i|%k", f"--name={name}"]
        found = [
            line.split("|", 1)[0]
            for line in (await slurm(self.shell, argv)).splitlines()
            if line.partition("|")[2].strip() == comment
        ]
        if not found:
            # Purged from slurmctld's memory: accounting remembers (by name) if it is on.
            argv = [
                "sacct",
                "--noheader",
                "--parsable2",
                "--allocations",
                "--starttime=now-30days",
                "--format=JobIDRaw",
                f"--name={name}",
            ]
            with contextlib.suppress(SlurmError):
                found = (await slurm(self.shell, argv)).split()
        return found[-1] if found else None

    async def fetch(self, task: TaskContext) -> None:
        """Read the outcome and the job's stdout and stderr."""
        directory = task.state["dir"]
        out, err, outcome = [
            await self.shell.read(posixpath.join(directory, name))
            for name in ("stdout", "stderr", "outcome")
        ]
        task.outcome = TaskOutcome.from_files(
            outcome, out, err, lambda: describe_end(task.state["job_id"], task.state["end"])
        )

    async def cleanup(self, task: TaskContext) -> None:
        """Keep what a cancelled job printed; remove the task's directory (unless
        ``cleanup=False``)."""
        if "dir" in task.state and task.outcome is None:
            with contextlib.suppress(Exception):
                out, err = [
                    await self.shell.read(posixpath.join(task.state["dir"], name))
                    for name in ("stdout", "stderr")
                ]
                task.streams = TaskOutcome.texts(out, err)
        if self.do_cleanup and "dir" in task.state:
            await self.shell.remove_tree(task.state["dir"])
        if self.packer is not None:
            await self.packer.cleanup(task)

    async def cancel(self, task_metadata: dict[str, Any], job_handle: str) -> bool:
        """``scancel`` the job (Slurm: SIGTERM, KillWait, SIGKILL); True once it left the queue."""
        job_id = str(json.loads(job_handle)["job_id"])
        try:
            await slurm(self.shell, ["scancel", job_id])
        except SlurmError as exc:
            if exc.invalid_job_id:
                return True  # long gone
            if not exc.already_ended:
                raise
        return await wait_until_gone(lambda: self._gone(job_id), self.cancel_bound)

    async def read_output(
        self, task_metadata: dict[str, Any], job_handle: str, stream: str
    ) -> str | None:
        """The job's ``stdout`` or ``stderr`` file (``sbatch --output``/``--error``) as it is
        now, in the task's directory on the cluster's shared file system."""
        task = TaskContext.of(task_metadata, self.short_name)
        data = await self.shell.read(posixpath.join(self.task_dir(task), stream))
        return None if data is None else data.decode(errors="replace")

    async def _gone(self, job_id: str) -> bool:
        """True once the job has left the queue (its processes are dead) and has ended."""
        argv = ["squeue", "--noheader", "--format=%T", f"--jobs={job_id}"]
        try:
            out = await slurm(self.shell, argv)
        except SlurmError as exc:
            if exc.invalid_job_id:
                return True
            raise
        return not out.strip() and await final_state(self.shell, job_id) is not None

    async def close(self) -> None:
        """Close the SSH connection to the login node, if any."""
        await self.shell.close()
