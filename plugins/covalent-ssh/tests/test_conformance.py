"""SSHExecutor passes covalent-core's conformance suite, as root and as a non-root user."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import USER, USER_PYTHON
from covalent_ssh import SSHExecutor
from probes import job_alive, listing

from covalent_core.testing import ExecutorConformance


class SSHConformance(ExecutorConformance):
    # The session's sshd keeps its keys and config in /tmp/covalent-sshd-*.
    local_scratch_ignore = (*ExecutorConformance.local_scratch_ignore, "covalent-sshd-")
    user: str = "root"
    python: str = str(Path(sys.executable).absolute())
    home: Path = Path("/root")

    @pytest.fixture
    def workdir(self) -> str:
        return f".cache/covalent-ssh-tests/{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def executor(self, sshd, workdir: str) -> SSHExecutor:
        return SSHExecutor(
            username=self.user,
            hostname="127.0.0.1",
            port=sshd.port,
            ssh_key_file=str(sshd.client_key),
            known_hosts=str(sshd.known_hosts),
            remote_workdir=workdir,
            python_path=self.python,
            cancel_grace=1.0,
        )

    @pytest.fixture
    def job_alive(self, executor: SSHExecutor) -> Callable[[str], bool]:
        return job_alive

    @pytest.fixture
    def leftovers(self, workdir: str) -> Callable[[], list[str]]:
        return lambda: listing(self.home / workdir)


class TestSSHAsRoot(SSHConformance):
    pass


class TestSSHAsUser(SSHConformance):
    user = USER
    python = USER_PYTHON
    home = Path("/home") / USER
