"""DaskExecutor passes covalent-core's conformance suite on a real scheduler and two workers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from covalent_dask import DaskExecutor

from covalent_core.sdk import ProcessHandle
from covalent_core.testing import ExecutorConformance


def job_alive(handle: str) -> bool:
    """The workers run on this machine: its process table and files are the truth. The
    handle names the warm process the task was forked from, which a cancel kills and which
    otherwise outlives the task (to run the next one), and the task's directory, where the
    outcome appears when the task ends."""
    data = json.loads(handle)
    directory = Path(data["dir"])
    return (
        ProcessHandle.from_json(handle).alive()
        and directory.is_dir()
        and not (directory / "outcome").exists()
    )


class TestDask(ExecutorConformance):
    @pytest.fixture
    def executor(self, dask_cluster) -> DaskExecutor:
        return DaskExecutor(scheduler_address=dask_cluster.address, cancel_grace=1.0)

    @pytest.fixture
    def job_alive(self) -> Callable[[str], bool]:
        return job_alive

    @pytest.fixture
    def leftovers(self, dask_cluster) -> Callable[[], list[str]]:
        def left() -> list[str]:
            dirs = dask_cluster.directory.glob("worker-*/covalent-core/*")
            return sorted(str(p) for p in dirs)

        return left
