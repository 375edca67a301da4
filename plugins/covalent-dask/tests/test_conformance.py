"""DaskExecutor passes covalent-core's conformance suite on a real scheduler and two workers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from covalent_dask import DaskExecutor

from covalent_core.executors import ProcessHandle
from covalent_core.testing import ExecutorConformance


class TestDask(ExecutorConformance):
    @pytest.fixture
    def executor(self, dask_cluster) -> DaskExecutor:
        return DaskExecutor(scheduler_address=dask_cluster.address, cancel_grace=1.0)

    @pytest.fixture
    def job_alive(self) -> Callable[[str], bool]:
        # The workers run on this machine: its process table is the truth.
        return lambda handle: ProcessHandle.from_json(handle).alive()

    @pytest.fixture
    def leftovers(self, dask_cluster) -> Callable[[], list[str]]:
        def left() -> list[str]:
            dirs = dask_cluster.directory.glob("worker-*/covalent-core/*")
            return sorted(str(p) for p in dirs)

        return left
