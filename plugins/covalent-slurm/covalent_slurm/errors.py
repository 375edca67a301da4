"""covalent-slurm's errors: covalent-core ``ExecutorError``s with Slurm's own output."""

from __future__ import annotations

from covalent_core.errors import ExecutorError


class SlurmError(ExecutorError):
    """A Slurm command failed; ``command``, ``stderr`` and ``exit_code`` say how."""

    @property
    def invalid_job_id(self) -> bool:
        """Slurm does not know the job (any more): it ended and was purged."""
        return "Invalid job id" in self.stderr

    @property
    def already_ended(self) -> bool:
        """``scancel`` of a job that is completing or completed."""
        return "already completing or completed" in self.stderr

    @property
    def accounting_disabled(self) -> bool:
        """``sacct`` on a cluster without slurmdbd."""
        return "accounting storage is disabled" in self.stderr


class ControllerUnreachable(SlurmError):
    """slurmctld did not answer, even after retries."""
