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


def test_a_finished_tasks_directory_is_made_free_for_the_next_and_holds_nothing_of_it(tmp_path):
    """A removed task directory leaves its name at once and becomes a free one: no start
    mark, no outcome, empty output files, so nothing of its task can be taken for the next
    one's; the next task's directory is that one renamed. Past ``KEEP`` free ones, and one
    holding other files, are deleted; so are a stopped executor's, and all at close."""
    import asyncio

    from covalent_core.executors.local import TaskDirectories
    from covalent_core.executors.worker import TASK_FILES

    def finished(name: str, extra: str | None = None) -> Path:
        path = tmp_path / name
        path.mkdir()
        for file in ("started", "outcome", "stdout", "stderr"):
            (path / file).write_text(f"{file} of {name}")
        if extra:
            (path / extra).write_text("the task's own")
        return path

    stale = tmp_path / f"{TaskDirectories.PREFIX}stopped-0"  # a stopped executor's
    stale.mkdir()

    def entries() -> list[str]:
        return sorted(p.name for p in tmp_path.iterdir())

    async def scenario() -> None:
        dirs = TaskDirectories()
        dirs.KEEP = 2
        for i in range(3):
            await dirs.remove(finished(f"d-{i}"))
        await dirs.remove(finished("d-3", extra="notes.txt"))
        free = entries()
        assert len(free) == 2 and all(n.startswith(TaskDirectories.PREFIX) for n in free)
        assert stale.name not in free
        for name in free:
            inside = {p.name: p.read_text() for p in (tmp_path / name).iterdir()}
            assert set(inside) <= set(TASK_FILES)
            assert "started" not in inside and "outcome" not in inside
            assert inside["stdout"] == "" and inside["stderr"] == ""
        dirs.place(tmp_path / "d-9")
        assert (tmp_path / "d-9").is_dir() and len(entries()) == 2
        await dirs.close()
        assert entries() == ["d-9"]

    asyncio.run(scenario())
