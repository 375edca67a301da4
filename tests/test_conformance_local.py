"""The built-in local executor passes the conformance suite."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from covalent_core.executors.local import LocalExecutor
from covalent_core.executors.processes import ProcessHandle
from covalent_core.testing import ExecutorConformance


class TestLocalExecutor(ExecutorConformance):
    @pytest.fixture
    def executor(self) -> LocalExecutor:
        return LocalExecutor(max_workers=4, cancel_grace=1.0)

    @pytest.fixture
    def job_alive(self, executor: LocalExecutor) -> Callable[[str], bool]:
        return lambda handle: ProcessHandle.from_json(handle).alive()

    @pytest.fixture
    def leftovers(self, executor: LocalExecutor) -> Callable[[], list[str]]:
        # The local executor writes no files; stray task processes are found by the suite.
        return lambda: []
