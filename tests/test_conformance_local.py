"""The built-in local executor passes the conformance suite."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import task_directories

from covalent_core.executors.local import LocalExecutor
from covalent_core.executors.processes import ProcessHandle
from covalent_core.testing import ExecutorConformance

# The system temporary directory, before any test points TMPDIR at a private one.
SYSTEM_TMP = tempfile.gettempdir()


class TestLocalExecutor(ExecutorConformance):
    @pytest.fixture
    def executor(self) -> LocalExecutor:
        return LocalExecutor(max_workers=4, cancel_grace=1.0)

    @pytest.fixture
    def job_alive(self, executor: LocalExecutor) -> Callable[[str], bool]:
        return lambda handle: ProcessHandle.from_json(handle).alive()

    @pytest.fixture
    def leftovers(self, executor: LocalExecutor) -> Callable[[], list[str]]:
        # Each task's directory (start mark, outcome); stray processes are found by the suite.
        return task_directories


class TestLocalExecutorWhileOthersUseTmp(TestLocalExecutor):
    """The nothing-left-behind checks hold while other programs write into the system /tmp."""

    @pytest.fixture(autouse=True)
    def busy_neighbour(self) -> Iterator[None]:
        stop = threading.Event()
        made: list[str] = []

        def scribble() -> None:
            while not stop.wait(0.01):
                handle, path = tempfile.mkstemp(prefix="neighbour-", dir=SYSTEM_TMP)
                os.close(handle)
                made.append(path)

        thread = threading.Thread(target=scribble, daemon=True)
        thread.start()
        yield
        stop.set()
        thread.join()
        for path in made:
            with contextlib.suppress(OSError):
                os.unlink(path)
        assert made, "the neighbour wrote nothing: this test proved nothing"

    # Only the checks that look for leftovers matter here.
    test_returns_value = None  # type: ignore[assignment]
    test_args_and_kwargs = None  # type: ignore[assignment]
    test_exception_carries_the_remote_traceback = None  # type: ignore[assignment]
    test_task_whose_process_dies_fails_clearly = None  # type: ignore[assignment]
    test_job_handle_is_stored_before_the_task_finishes = None  # type: ignore[assignment]
    test_cancel_after_completion_changes_nothing = None  # type: ignore[assignment]
    test_double_cancel_is_harmless = None  # type: ignore[assignment]
    test_cancel_from_a_fresh_process_uses_only_the_store = None  # type: ignore[assignment]
    test_large_argument_and_result = None  # type: ignore[assignment]
    test_cancel_between_stages_skips_every_later_stage = None  # type: ignore[assignment]
    test_timeout_stops_the_job = None  # type: ignore[assignment]
    test_packed_tasks_share_a_job_and_cancel_together = None  # type: ignore[assignment]


def test_task_directories_are_renamed_at_once_and_deleted_together_when_idle(tmp_path):
    """A removed task directory leaves its name at once; it is deleted once removals pause,
    together with what an earlier (stopped) service had renamed and not deleted."""
    import asyncio
    import time

    from covalent_core.executors.local import DirectoryRemover

    def task_dir(name: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        for file in ("started", "outcome", "stdout", "stderr"):
            (path / file).write_text(file)
        return path

    earlier = task_dir(f"{DirectoryRemover.PREFIX}deadbeef-0-d-1")  # a stopped service's
    first, second = task_dir("d-2"), task_dir("d-3")

    async def scenario() -> None:
        remover = DirectoryRemover()
        await remover.remove(first)
        await remover.remove(second)
        assert not first.exists() and not second.exists()  # their names are free at once
        renamed = sorted(p.name for p in tmp_path.iterdir())
        assert len(renamed) == 3 and all(n.startswith(DirectoryRemover.PREFIX) for n in renamed)
        deadline = time.monotonic() + 30
        while list(tmp_path.iterdir()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert list(tmp_path.iterdir()) == []
        third = task_dir("d-4")
        await remover.remove(third)
        await remover.close()  # what waits is deleted when the executor closes
        assert list(tmp_path.iterdir()) == []
        await remover.remove(tmp_path / "never-made")  # nothing to remove: no error

    asyncio.run(scenario())
    assert not earlier.exists()
