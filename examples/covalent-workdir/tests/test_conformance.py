"""covalent-workdir passes covalent-core's executor conformance suite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from covalent_workdir import WorkdirExecutor

from covalent_core.sdk import ProcessHandle
from covalent_core.testing import ExecutorConformance


class TestWorkdirExecutor(ExecutorConformance):
    @pytest.fixture
    def root(self, tmp_path: Path) -> Path:
        return tmp_path / "tasks"

    @pytest.fixture
    def executor(self, root: Path) -> WorkdirExecutor:
        return WorkdirExecutor(root=str(root), cancel_grace=1.0)

    @pytest.fixture
    def job_alive(self, executor: WorkdirExecutor) -> Callable[[str], bool]:
        return lambda handle: ProcessHandle.from_json(handle).alive()

    @pytest.fixture
    def leftovers(self, root: Path) -> Callable[[], list[str]]:
        return lambda: sorted(str(p) for p in root.glob("*")) if root.exists() else []
