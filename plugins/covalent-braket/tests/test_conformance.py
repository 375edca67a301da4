"""BraketExecutor (hybrid mode: any Python function, in a killable local process whose
quantum tasks are cancelled with it) passes covalent-core's conformance suite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from covalent_braket import BraketExecutor
from helpers import make, objects, unfinished

from covalent_core.sdk import ProcessHandle
from covalent_core.testing import ExecutorConformance


class TestBraketHybrid(ExecutorConformance):
    @pytest.fixture
    def workdir(self, tmp_path: Path) -> Path:
        return tmp_path / "braket"

    @pytest.fixture
    def executor(self, moto, braket, workdir: Path) -> BraketExecutor:
        return make(moto, braket, workdir, hybrid=True, cancel_grace=1.0)

    @pytest.fixture
    def job_alive(self) -> Callable[[str], bool]:
        return lambda handle: ProcessHandle.from_json(handle).alive()

    @pytest.fixture
    def leftovers(self, moto, braket, workdir: Path) -> Callable[[], list[str]]:
        def left() -> list[str]:
            files = sorted(str(p) for p in workdir.iterdir()) if workdir.exists() else []
            return files + objects(moto) + unfinished(braket)

        return left
