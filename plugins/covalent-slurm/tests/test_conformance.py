"""SlurmExecutor passes covalent-core's conformance suite, on the login node and over SSH."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from covalent_slurm import SlurmExecutor
from probes import job_alive, listing, queued_jobs

from covalent_core.testing import ExecutorConformance

PYTHON = str(Path(sys.executable).absolute())


class SlurmConformance(ExecutorConformance):
    teardown_seconds = 60.0  # a cancelled job stays COMPLETING while slurmd tears it down
    # The session's cluster and sshd keep their files in /tmp/covalent-slurm-*, -sshd-*.
    local_scratch_ignore = (
        *ExecutorConformance.local_scratch_ignore,
        "covalent-sshd-",
        "covalent-slurm-",
    )
    over_ssh = False
    job_starts_in = "provision"  # sbatch

    @pytest.fixture
    def workdir(self) -> Path:
        return Path("/tmp/covalent-slurm-tests") / uuid.uuid4().hex[:8]

    @pytest.fixture
    def executor(self, cluster, sshd, workdir: Path) -> SlurmExecutor:
        ssh = {}
        if self.over_ssh:
            ssh = {
                "address": "127.0.0.1",
                "username": "root",
                "ssh_port": sshd.port,
                "ssh_key_file": str(sshd.client_key),
                "known_hosts": str(sshd.known_hosts),
            }
        return SlurmExecutor(
            **ssh,
            options={"partition": "debug", "time": "00:10:00"},
            remote_workdir=str(workdir),
            python_path=PYTHON,
            slurm_conf=str(cluster.conf),
            poll_freq=0.5,
        )

    @pytest.fixture
    def job_alive(self, cluster) -> Callable[[str], bool]:
        return lambda handle: job_alive(cluster, handle)

    @pytest.fixture
    def leftovers(self, cluster, workdir: Path) -> Callable[[], list[str]]:
        return lambda: listing(workdir) + queued_jobs(cluster)


class TestSlurmOnLoginNode(SlurmConformance):
    pass


class TestSlurmOverSSH(SlurmConformance):
    over_ssh = True


class TestSlurmPacked(SlurmConformance):
    """With pack=True every task of a dispatch runs inside one Slurm job."""

    supports_packing = True
    # A pilot job lingers pack_idle seconds after its last task, then ends by itself.
    settle_seconds = 4.0

    @pytest.fixture
    def packed_executor(self, cluster, workdir: Path) -> SlurmExecutor:
        return SlurmExecutor(
            options={"partition": "debug"},
            remote_workdir=str(workdir),
            python_path=PYTHON,
            slurm_conf=str(cluster.conf),
            poll_freq=0.5,
            pack=True,
            pack_idle=2.0,
        )

    @pytest.fixture
    def executor(self, packed_executor: SlurmExecutor) -> SlurmExecutor:
        return packed_executor
