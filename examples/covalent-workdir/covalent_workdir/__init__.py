"""A covalent-core executor that runs each task in its own directory, under any Python.

    @ct.electron(executor=WorkdirExecutor(root="/scratch/tasks", python_path="python3.12"))

Pickle sets the task to run in ``<root>/<dispatch>-<node>``; upload copies it there with
covalent-core's standalone runner; provision checks the interpreter can run it; run starts it
in its own session, held at a gate until its handle is stored; fetch reads the outcome;
cleanup removes the directory; reattach (after the dispatcher died) waits for the process and
lets fetch read what it left. Written against the public plugin API only
(``covalent_core.sdk``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

from covalent_core.errors import JobLostError
from covalent_core.sdk import (
    CLOUDPICKLE_PROBE,
    RUNNER_PATH,
    Executor,
    ProcessHandle,
    TaskContext,
    TaskOutcome,
    describe_exit,
    hookimpl,
    interpreter_error,
    kill_group,
    start_gated,
    wait_for_exit,
)


class WorkdirExecutor(Executor):
    """Each task in ``root/<dispatch>-<node>``, run by ``python_path``; killable as a group."""

    short_name: ClassVar[str] = "workdir"
    cancel_bound: ClassVar[float] = 5.0

    def __init__(self, root: str, python_path: str = sys.executable, cancel_grace: float = 2.0):
        super().__init__()
        self.root = Path(root)
        self.python_path = python_path
        self.cancel_grace = cancel_grace
        self._checked = False

    def workdir(self, task: TaskContext) -> Path:
        """The task's own directory."""
        return self.root / f"{task.dispatch_id}-{task.node_id}"

    async def pickle(self, task: TaskContext) -> None:
        """The task's payload, set to run in its own directory."""
        task.payload = task.build_payload(cwd=str(self.workdir(task)))

    async def upload(self, task: TaskContext) -> None:
        """Write the payload and the runner into the task's directory."""
        workdir = self.workdir(task)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "payload").write_bytes(task.payload or b"")
        shutil.copyfile(RUNNER_PATH, workdir / "runner.py")

    async def provision(self, task: TaskContext) -> None:
        """Check once that the interpreter exists and has cloudpickle."""
        if self._checked:
            return
        argv = [self.python_path, *CLOUDPICKLE_PROBE]
        try:
            proc = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True)
            code, stderr = proc.returncode, proc.stderr
        except OSError:
            code, stderr = None, ""
        error = interpreter_error(self.python_path, "this machine", code, stderr)
        if error is not None:
            raise error
        self._checked = True

    async def run(self, task: TaskContext) -> None:
        """Start the runner in its own session; store its handle, then let it run; wait."""
        workdir = self.workdir(task)
        argv = [self.python_path, "runner.py", "payload", "outcome"]
        with open(workdir / "stdout", "wb") as out, open(workdir / "stderr", "wb") as err:
            proc = await start_gated(argv, workdir / "started", cwd=workdir, stdout=out, stderr=err)
        # "dir": where its stdout and stderr are: the default read_output reads them while it runs.
        await task.set_job_handle({**proc.handle.to_dict(), "dir": str(workdir)})
        await proc.release()
        task.state["returncode"] = await proc.wait()

    async def reattach(self, task: TaskContext, job_handle: str | None) -> bool:
        """Wait for the process a dead dispatcher started; fetch then reads what it left."""
        if job_handle is None:
            return False  # the process runs only once its handle is stored: none was started
        handle = ProcessHandle.from_json(job_handle)
        await wait_for_exit(handle)
        workdir = self.workdir(task)
        if (workdir / "outcome").exists():
            return True
        if not (workdir / "started").exists():
            return False  # it exited at its gate: start the task again
        raise JobLostError(f"process {handle.pid} is gone and left no outcome in {workdir}")

    async def fetch(self, task: TaskContext) -> None:
        """Read the outcome, or say how the process ended without one."""
        workdir = self.workdir(task)

        def read(name: str) -> bytes | None:
            path = workdir / name
            return path.read_bytes() if path.exists() else None

        task.outcome = TaskOutcome.from_files(
            read("outcome"),
            read("stdout"),
            read("stderr"),
            lambda: describe_exit(task.state.get("returncode")),
        )

    async def cleanup(self, task: TaskContext) -> None:
        """Keep what a cancelled task printed, then remove its directory."""
        workdir = self.workdir(task)
        if task.outcome is None:  # stopped before it ended: its output so far is kept
            with contextlib.suppress(OSError):
                task.streams = (
                    (workdir / "stdout").read_text(errors="replace"),
                    (workdir / "stderr").read_text(errors="replace"),
                )
        await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def cancel(self, task_metadata: dict[str, Any], job_handle: str) -> bool:
        """SIGTERM the task's process group, SIGKILL after the grace; never a reused PID."""
        handle = ProcessHandle.from_json(job_handle)
        return await asyncio.to_thread(kill_group, handle, self.cancel_grace)


@hookimpl
def covalent_executor_classes() -> list[type[Executor]]:
    """The executors this plugin provides."""
    return [WorkdirExecutor]
