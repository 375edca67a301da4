"""Slurm job states: asking for many jobs in one call, and saying how a job ended.

One shared poller per cluster connection polls every job a dispatcher waits on with a
single ``squeue`` call per interval. A job gone from the queue has ended; its final state
comes from ``sacct`` when accounting is available (one call for all of them), else from
``scontrol show job``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from covalent_core.executors import BatchedPoller, shared_poller

from .shell import Shell

logger = logging.getLogger(__name__)

ACTIVE = {
    "PENDING", "RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING", "RESIZING",
    "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SIGNALING",
    "STAGE_OUT", "STOPPED", "SPECIAL_EXIT",
}  # fmt: skip
# Errors that mean slurmctld could not be reached: worth retrying.
UNREACHABLE = re.compile(
    r"Unable to contact slurm controller|Socket timed out|Connection refused|"
    r"Zero Bytes were transmitted|Communication connection failure",
    re.IGNORECASE,
)
COUNTER: Counter[str] = Counter()
"""How many times each Slurm command ran in this process (for benchmarks)."""


@dataclass(frozen=True)
class JobEnd:
    """How a job ended: Slurm's state, the exit code and the signal that ended it."""

    state: str
    exit_code: int = 0
    signal: int = 0
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED" and self.exit_code == 0


def parse_exit(text: str) -> tuple[int, int]:
    """Slurm's ``ExitCode=code:signal``."""
    code, _, sig = text.partition(":")
    try:
        return int(code or 0), int(sig or 0)
    except ValueError:
        return 0, 0


def parse_scontrol(text: str) -> dict[str, str]:
    """``scontrol show job -o`` output as a dict (values without spaces)."""
    fields: dict[str, str] = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep and key not in fields:
            fields[key] = value
    return fields


def describe_end(job_id: str, end: JobEnd) -> str:
    """A node error a user can act on, for a job that did not complete successfully."""
    where = f"Slurm job {job_id}"
    messages = {
        "TIMEOUT": f"{where} hit its time limit (TIMEOUT); raise options['time']",
        "OUT_OF_MEMORY": f"{where} ran out of memory (OUT_OF_MEMORY); raise options['mem']",
        "NODE_FAIL": f"{where} failed because its node failed (NODE_FAIL)",
        "PREEMPTED": f"{where} was preempted by a higher-priority job (PREEMPTED)",
        "BOOT_FAIL": f"{where} failed because its node could not boot (BOOT_FAIL)",
        "DEADLINE": f"{where} missed its deadline (DEADLINE)",
        "CANCELLED": f"{where} was cancelled outside covalent (CANCELLED by scancel or an admin)",
    }
    if end.state in messages:
        return messages[end.state]
    if end.signal:
        return f"{where} was killed by signal {end.signal} ({end.state})"
    if end.state == "LOST":
        return f"{where} is no longer known to Slurm and left no result"
    return f"{where} ended {end.state} with exit code {end.exit_code}"


class SlurmError(RuntimeError):
    """A Slurm command failed; the message is Slurm's own."""


class ControllerUnreachable(SlurmError):
    """slurmctld did not answer, even after retries."""


async def slurm(shell: Shell, argv: list[str], retries: int = 2, delay: float = 1.0) -> str:
    """Run a Slurm command, retrying while slurmctld is unreachable; its stdout."""
    for attempt in range(1, retries + 1):
        COUNTER[argv[0]] += 1
        result = await shell.run(argv)
        if result.returncode == 0:
            return result.stdout
        message = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
        if not UNREACHABLE.search(message):
            raise SlurmError(f"{argv[0]} on {shell.describe()}: {message}")
        if attempt == retries:
            raise ControllerUnreachable(
                f"slurmctld did not answer {argv[0]} on {shell.describe()} after {retries} "
                f"attempts: {message}. Is the cluster up (`scontrol ping`)?"
            )
        logger.warning("%s: slurmctld unreachable (attempt %d): %s", argv[0], attempt, message)
        await asyncio.sleep(delay * attempt)
    raise AssertionError("unreachable")


async def final_state(shell: Shell, job_id: str) -> JobEnd | None:
    """The state of one job from ``scontrol`` (None while it is still active)."""
    try:
        text = await slurm(shell, ["scontrol", "show", "job", "-o", job_id])
    except SlurmError as exc:
        if "Invalid job id" in str(exc):
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
            if "Invalid job id" not in str(exc):
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
                if "accounting storage is disabled" not in str(exc) and self.accounting:
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
