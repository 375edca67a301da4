"""Talking to Slurm: where its commands run, running them, and polling many jobs at once.

Commands run on this machine (a login node) or on a login node over SSH; both shells offer
the same few operations, with argv lists (joined with ``shlex.join`` only for the remote
shell). The SSH side is covalent-ssh's shared connection (``covalent-slurm[ssh]``). One
shared poller per cluster connection asks about every job a dispatcher waits on with a
single ``squeue`` call per interval; a job gone from the queue has ended, and its final
state comes from ``sacct`` when accounting is available (one call), else ``scontrol``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import posixpath
import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from covalent_core.errors import ExecutorConfigError
from covalent_core.sdk import BatchedPoller, shared_poller

from .errors import ControllerUnreachable, SlurmError
from .states import ACTIVE, JobEnd, parse_exit, parse_scontrol

logger = logging.getLogger(__name__)

# Errors that mean slurmctld could not be reached: worth retrying.
UNREACHABLE = re.compile(
    r"Unable to contact slurm controller|Socket timed out|Connection refused|"
    r"Zero Bytes were transmitted|Communication connection failure",
    re.IGNORECASE,
)
COUNTER: Counter[str] = Counter()
"""How many times each Slurm command ran in this process (for benchmarks)."""


@dataclass
class Completed:
    """A finished command."""

    returncode: int
    stdout: str
    stderr: str


SLURM_COMMANDS = frozenset({"sbatch", "squeue", "sacct", "scontrol", "scancel", "sinfo"})


def resolve(argv: list[str], slurm_path: str | None) -> list[str]:
    """Slurm's commands from ``slurm_path`` when one is configured."""
    if slurm_path and argv[0] in SLURM_COMMANDS:
        return [posixpath.join(slurm_path, argv[0]), *argv[1:]]
    return argv


class LocalShell:
    """Runs commands with subprocess and touches files directly: we are on the login node."""

    def __init__(self, env: dict[str, str], slurm_path: str | None = None) -> None:
        self.env = env
        self.slurm_path = slurm_path

    def describe(self) -> str:
        return "this machine"

    async def run(self, argv: list[str]) -> Completed:
        argv = resolve(argv, self.slurm_path)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, **self.env},
            )
        except FileNotFoundError:
            return Completed(127, "", f"{argv[0]}: command not found")
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return Completed(
            proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
        )

    async def makedirs(self, path: str) -> None:
        await asyncio.to_thread(os.makedirs, os.path.expanduser(path), 0o700, True)

    async def put(
        self, data: bytes, path: str, cancelled: Callable[[], bool] | None = None
    ) -> None:
        await asyncio.to_thread(Path(os.path.expanduser(path)).write_bytes, data)

    async def read(self, path: str) -> bytes | None:
        target = Path(os.path.expanduser(path))
        try:
            return await asyncio.to_thread(target.read_bytes)
        except FileNotFoundError:
            return None

    async def rename(self, source: str, target: str) -> bool:
        try:
            await asyncio.to_thread(
                os.rename, os.path.expanduser(source), os.path.expanduser(target)
            )
        except OSError:
            return False
        return True

    async def remove_tree(self, path: str) -> None:
        await asyncio.to_thread(shutil.rmtree, os.path.expanduser(path), True)

    async def close(self) -> None:
        pass


class RemoteShell:
    """Runs commands on a login node through covalent-ssh's shared connection."""

    def __init__(
        self, ssh: dict[str, Any], env: dict[str, str], slurm_path: str | None = None
    ) -> None:
        try:
            from covalent_ssh.client import SSHTarget, connection
        except ImportError:
            raise ExecutorConfigError(
                "SlurmExecutor with address= reaches the login node over SSH, which needs "
                "covalent-ssh: `pip install 'covalent-slurm[ssh]'`, or run on the login node "
                "itself without address="
            ) from None
        self.target = SSHTarget(**ssh)
        self._connection = connection
        self.env = env
        self.slurm_path = slurm_path

    def describe(self) -> str:
        return self.target.describe()

    async def run(self, argv: list[str]) -> Completed:
        argv = resolve(argv, self.slurm_path)
        if self.env:
            argv = ["env", *(f"{k}={v}" for k, v in self.env.items()), *argv]
        result = await self._connection(self.target).run(argv, check=False)
        return Completed(result.exit_status or 0, result.stdout or "", result.stderr or "")

    async def makedirs(self, path: str) -> None:
        await self._connection(self.target).makedirs(path)

    async def put(
        self, data: bytes, path: str, cancelled: Callable[[], bool] | None = None
    ) -> None:
        await self._connection(self.target).put(data, path, cancelled)

    async def read(self, path: str) -> bytes | None:
        return await self._connection(self.target).read(path)

    async def rename(self, source: str, target: str) -> bool:
        return await self._connection(self.target).rename(source, target)

    async def remove_tree(self, path: str) -> None:
        await self._connection(self.target).remove_tree(path)

    async def close(self) -> None:
        await self._connection(self.target).close()


Shell = LocalShell | RemoteShell


async def slurm(shell: Shell, argv: list[str], retries: int = 2, delay: float = 1.0) -> str:
    """Run a Slurm command, retrying while slurmctld is unreachable; its stdout."""
    for attempt in range(1, retries + 1):
        COUNTER[argv[0]] += 1
        result = await shell.run(argv)
        if result.returncode == 0:
            return result.stdout
        message = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
        details = {
            "command": argv,
            "stdout": result.stdout,
            "stderr": result.stderr,
            "exit_code": result.returncode,
        }
        if not UNREACHABLE.search(message):
            raise SlurmError(f"{argv[0]} on {shell.describe()}: {message}", **details)
        if attempt == retries:
            raise ControllerUnreachable(
                f"slurmctld did not answer {argv[0]} on {shell.describe()} after {retries} "
                f"attempts: {message}. Is the cluster up (`scontrol ping`)?",
                **details,
            )
        logger.warning("%s: slurmctld unreachable (attempt %d): %s", argv[0], attempt, message)
        await asyncio.sleep(delay * attempt)
    raise AssertionError("unreachable")


async def final_state(shell: Shell, job_id: str) -> JobEnd | None:
    """The state of one job from ``scontrol`` (None while it is still active)."""
    try:
        text = await slurm(shell, ["scontrol", "show", "job", "-o", job_id])
    except SlurmError as exc:
        if exc.invalid_job_id:
            return JobEnd("LOST")
        raise
    fields = parse_scontrol(text)
    state = fields.get("JobState", "UNKNOWN")
    if state in ACTIVE:
        return None
    code, sig = parse_exit(fields.get("ExitCode", "0:0"))
    return JobEnd(state, code, sig, fields.get("Reason", ""))


async def final_states(shell: Shell, ids: list[str]) -> dict[str, JobEnd | None]:
    """Final states of several jobs from one ``scontrol show job`` call (all known jobs)."""
    text = await slurm(shell, ["scontrol", "show", "job", "-o"])
    found: dict[str, JobEnd | None] = {job_id: JobEnd("LOST") for job_id in ids}
    for line in text.splitlines():
        fields = parse_scontrol(line)
        job_id = fields.get("JobId")
        if job_id in found:
            state = fields.get("JobState", "UNKNOWN")
            code, sig = parse_exit(fields.get("ExitCode", "0:0"))
            found[job_id] = (
                None if state in ACTIVE else JobEnd(state, code, sig, fields.get("Reason", ""))
            )
    return found


class SlurmJobs:
    """What the shared poller asks of one cluster connection: which of these jobs ended?"""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.accounting: bool | None = None

    async def ended(self, ids: list[str]) -> dict[str, JobEnd]:
        """Final states of the jobs among ``ids`` that left the queue (one squeue call)."""
        active = await self._active(ids)
        gone = [j for j in ids if j not in active]
        if not gone:
            return {}
        return {j: end for j, end in (await self._final(gone)).items() if end is not None}

    async def _active(self, ids: list[str]) -> set[str]:
        """Which of these jobs are still queued, running or completing: one squeue call."""
        argv = ["squeue", "--noheader", "--format=%i %T", f"--jobs={','.join(ids)}"]
        try:
            out = await slurm(self.shell, argv)
        except SlurmError as exc:
            if not exc.invalid_job_id:
                raise
            out = ""  # every listed job has been purged from slurmctld's memory
        return {line.split()[0] for line in out.splitlines() if line.strip()}

    async def _final(self, ids: list[str]) -> dict[str, JobEnd | None]:
        """Final states: one sacct call for all, or scontrol per job without accounting."""
        if self.accounting is not False:
            argv = [
                "sacct",
                "--noheader",
                "--parsable2",
                "--allocations",
                "--format=JobIDRaw,State,ExitCode,Reason",
                f"--jobs={','.join(ids)}",
            ]
            try:
                out = await slurm(self.shell, argv)
                self.accounting = True
                found: dict[str, JobEnd | None] = {}
                for line in out.splitlines():
                    parts = line.split("|")
                    if len(parts) >= 3 and parts[0] in ids:
                        state = parts[1].split()[0]
                        code, sig = parse_exit(parts[2])
                        reason = parts[3] if len(parts) > 3 else ""
                        found[parts[0]] = (
                            None if state in ACTIVE else JobEnd(state, code, sig, reason)
                        )
                missing = [j for j in ids if j not in found]
                for job_id in missing:
                    found[job_id] = await final_state(self.shell, job_id)
                return found
            except SlurmError as exc:
                if not exc.accounting_disabled and self.accounting:
                    raise
                self.accounting = False
        return await final_states(self.shell, ids)


_jobs: dict[Any, SlurmJobs] = {}


def poller(key: Any, shell: Shell, interval: float) -> BatchedPoller:
    """The poller of one cluster connection in the running event loop."""
    jobs = _jobs.get(key)
    if jobs is None:
        jobs = _jobs[key] = SlurmJobs(shell)
    return shared_poller(key, jobs.ended, interval)
