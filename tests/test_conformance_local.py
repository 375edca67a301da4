"""The built-in local executor passes the conformance suite."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator

import psutil
import pytest
from helpers import wait_until

from covalent_core import config
from covalent_core.local.executor import LocalExecutor
from covalent_core.local.pool import WorkerPool
from covalent_core.sdk.processes import ProcessHandle
from covalent_core.sdk.runner import task_payload
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
        return lambda: sorted(p.name for p in config.tasks_dir().iterdir())


class TestLocalExecutorWhileOthersUseTmp(TestLocalExecutor):
    """The nothing-left-behind checks hold while other programs write into the system /tmp."""

    checks_outcomes = False  # only the checks that look for leftovers matter here

    @pytest.fixture(autouse=True)
    def busy_neighbour(self) -> Iterator[None]:
        stop = threading.Event()
        made: list[str] = []

        def scribble() -> None:
            while True:
                handle, path = tempfile.mkstemp(prefix="neighbour-", dir=SYSTEM_TMP)
                os.close(handle)
                made.append(path)
                if stop.wait(0.01):
                    return

        thread = threading.Thread(target=scribble, daemon=True)
        thread.start()
        yield
        stop.set()
        thread.join()
        for path in made:
            with contextlib.suppress(OSError):
                os.unlink(path)
        assert made, "the neighbour wrote nothing: this test proved nothing"


def test_a_task_whose_handle_could_not_be_stored_never_runs(tmp_path):
    """The worker prepares the task while its handle is stored, but runs it only on 'go': when
    storing the handle fails, the task's code never runs and its directory has no start mark."""
    import cloudpickle

    witness = tmp_path / "ran"

    def touch(path: str) -> None:
        open(path, "w").close()

    def payload_for(path) -> bytes:
        return task_payload(cloudpickle.dumps(touch), [cloudpickle.dumps(str(path))], {}, None)

    later = tmp_path / "ran-later"

    async def refuse(handle: ProcessHandle) -> None:
        await asyncio.sleep(0.2)  # the task's process has its payload by now
        raise RuntimeError("the store refused the handle")

    async def scenario() -> None:
        pool = WorkerPool(sys.executable, 1)
        try:
            with pytest.raises(RuntimeError):
                await pool.run(payload_for(witness), tmp_path / "task", refuse)
            ran = await pool.run(payload_for(later), tmp_path / "again", None)  # pool works
            assert ran.ok
        finally:
            await pool.close()

    asyncio.run(scenario())
    assert not (tmp_path / "task" / "started").exists()
    assert not witness.exists() and later.exists()


def _spare_of_a_worker(parent: psutil.Process) -> psutil.Process | None:
    """The child a warm worker of ``parent`` forked ahead, waiting for its task (children
    of ``parent`` that ended, zombies not reaped yet say, are passed over)."""
    for worker in parent.children():
        try:
            if "covalent_core.local.worker" in worker.cmdline():
                return next(iter(worker.children()), None)
        except psutil.Error:
            continue
    return None


def _ended(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_an_aborted_task_makes_no_directory_after_its_callers_cleanup(tmp_path):
    """Storing the handle fails (or a cancel lands then) while the task's process is slow to
    prepare: by the time ``pool.run`` raises, that process has ended, so whatever it made is
    there for the caller's cleanup to remove, never made after it."""
    directory = tmp_path / "task"
    spares: list[psutil.Process] = []

    async def refuse(handle: ProcessHandle) -> None:
        raise RuntimeError("the store refused the handle")

    async def scenario() -> None:
        pool = WorkerPool(sys.executable, 1)
        try:
            await pool.warm_up(1)
            spare = await asyncio.to_thread(
                wait_until, lambda: _spare_of_a_worker(psutil.Process()), 60
            )
            spares.append(spare)
            spare.send_signal(signal.SIGSTOP)  # it gets the task, but prepares nothing yet
            with pytest.raises(RuntimeError):
                await pool.run(task_payload(b"", [], {}, None), directory, refuse)
            shutil.rmtree(directory, ignore_errors=True)  # the caller's cleanup
        finally:
            for spare in spares:
                with contextlib.suppress(psutil.NoSuchProcess):
                    spare.send_signal(signal.SIGCONT)
            await pool.close()

    asyncio.run(scenario())
    wait_until(lambda: _ended(spares[0]), 30)
    assert not directory.exists(), f"made after cleanup: {sorted(os.listdir(directory))}"


DIES_WHILE_STORING = """
import asyncio, sys
from covalent_core.local.pool import WorkerPool
from covalent_core.sdk.runner import task_payload

async def main() -> None:
    pool = WorkerPool(sys.executable, 1)
    await pool.warm_up(1)
    print("warm", flush=True)
    sys.stdin.readline()

    async def storing(handle) -> None:
        print("storing", flush=True)
        await asyncio.Event().wait()  # the dispatcher dies while it stores the handle

    await pool.run(task_payload(b"", [], {}, None), sys.argv[1], storing)

asyncio.run(main())
"""


def test_a_task_whose_dispatcher_died_before_storing_its_handle_leaves_nothing(tmp_path):
    """The dispatcher dies while the task's handle is stored (its process has the payload and
    prepares): the task never runs, and its process removes the directory it made, however
    late it gets there (a next dispatcher may have run the task again and cleaned up)."""
    directory = tmp_path / "task"
    script = tmp_path / "dispatcher.py"
    script.write_text(DIES_WHILE_STORING)
    dispatcher = subprocess.Popen(
        [sys.executable, str(script), str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    spare = None
    try:
        assert dispatcher.stdout.readline() == "warm\n"
        spare = wait_until(lambda: _spare_of_a_worker(psutil.Process(dispatcher.pid)), 60)
        spare.send_signal(signal.SIGSTOP)  # it will get the task, but prepares nothing yet
        dispatcher.stdin.write("run\n")
        dispatcher.stdin.flush()
        assert dispatcher.stdout.readline() == "storing\n"
        dispatcher.kill()
        dispatcher.wait(30)
    finally:
        if spare is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                spare.send_signal(signal.SIGCONT)
        dispatcher.kill()
        dispatcher.wait(30)
    wait_until(lambda: _ended(spare), 30)
    assert not directory.exists(), f"left behind: {sorted(os.listdir(directory))}"
