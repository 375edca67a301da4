"""The pytest fixtures: each starts its server once per session and stops it at the end."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from covalent_core.testing import isolated_store

# Imported now, as pytest loads the plugin: the servers' directories go in the system
# temporary directory, never in the private TMPDIR a test gives the code under test.
from .ports import SYSTEM_TMP

INSTALL_HINT = "install it with `covalent-servers-install` (as root)"


def pytest_report_header() -> str:
    """Say where the servers keep their state."""
    return f"covalent test servers: state under {SYSTEM_TMP}"


@pytest.fixture(scope="session")
def sshd() -> Iterator[object]:
    """A real OpenSSH server on 127.0.0.1 with its own keys (see :mod:`.sshd`)."""
    from .sshd import SSHD, SSHServer

    if not os.path.exists(SSHD):
        pytest.fail(f"{SSHD} is missing: {INSTALL_HINT}")
    server = SSHServer.start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def cluster() -> Iterator[object]:
    """A real single-node Slurm cluster on 127.0.0.1 (see :mod:`.slurm`)."""
    from .slurm import SlurmCluster

    if shutil.which("slurmctld") is None:
        pytest.fail(f"Slurm is not installed: {INSTALL_HINT}")
    started = SlurmCluster.start()
    yield started
    started.stop()


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[object]:
    """A real Dask scheduler and two workers on 127.0.0.1 (see :mod:`.dask`)."""
    try:
        from .dask import DaskCluster
    except ImportError:  # pragma: no cover - the plugin's own dependency
        pytest.fail("dask[distributed] is not installed in this Python")
    started = DaskCluster.start(workers=2)
    yield started
    started.stop()


@pytest.fixture(scope="session")
def aws_credentials() -> Iterator[None]:
    """Dummy AWS credentials for every boto3 client, here and in the dispatcher service."""
    from .aws import CREDENTIALS, REGION

    saved = {k: os.environ.get(k) for k in (*CREDENTIALS, "AWS_DEFAULT_REGION")}
    os.environ.update(CREDENTIALS, AWS_DEFAULT_REGION=REGION)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def covalent_private_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private covalent-core data directory, service and temporary directory."""
    with isolated_store(tmp_path_factory.mktemp("data")) as data:
        yield data


SERVICE_LINES = 60
"""Lines of the dispatcher service's log and output shown with a failed test."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """A failed test shows the end of its dispatcher service's log and output: what the
    service did (and, if it stalled, the stacks it wrote) is what explains most failures."""
    report = yield
    if report.failed and os.environ.get("COVALENT_CORE_DATA_DIR"):
        from covalent_core import config

        try:
            directory = config.service_dir()
        except Exception:  # a report must not fail for want of a log
            return report
        for name in ("service.log", "service.out"):
            path = directory / name
            lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
            if lines:
                text = "\n".join(lines[-SERVICE_LINES:])
                report.sections.append((f"dispatcher service {name} (end)", text))
    return report
