"""Runs executors written for Covalent (``BaseExecutor``/``AsyncBaseExecutor``) on our stages.

An electron whose executor is such an instance is stored with the executor ``"covalent"``
and options holding the instance pickled, so the dispatcher never unpickles or imports it.
For each task, ``upload`` writes the task and the executor into a private directory, ``run``
starts :mod:`covalent_core.executor.adapter_runner` there in a process group of its own
(behind a gate that opens once its handle is stored), ``fetch`` reads the outcome and
``cleanup`` removes the directory; after a dispatcher died, ``reattach`` waits for that
process, which keeps running. ``cancel`` raises the task's cancel flag
(``get_cancel_requested()`` turns true), calls the executor's own
``cancel(task_metadata, job_handle)`` with the handle it set, and stops the process group.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any, ClassVar

import cloudpickle

from .. import config
from ..errors import ExecutorConfigError, JobLostError
from ..hookspecs import hookimpl
from ..permissions import private_open
from ..plain_pickle import loads_plain
from ..sdk.base import Executor, TaskContext, TaskOutcome
from ..sdk.gated import start_gated
from ..sdk.processes import ProcessHandle, describe_exit, kill_group, wait_for_exit
from .adapter_runner import EXECUTOR_FILE, METADATA_FILE, OUTCOME_FILE, PAYLOAD_FILE
from .base import CANCEL_FLAG_FILE

STDOUT_FILE = "process.out"
STDERR_FILE = "process.err"
STARTED_FILE = "started"
CANCEL_CALL_TIMEOUT = 120.0


def adapter_options(instance: Any) -> dict[str, Any]:
    """The options under which a Covalent-style executor instance is stored."""
    try:
        pickled = cloudpickle.dumps(instance)
    except Exception as exc:
        raise ExecutorConfigError(
            f"executor {type(instance).__name__} cannot be pickled ({exc}); keep connections "
            "and clients out of its attributes (create them in setup() or run())"
        ) from exc
    cls = type(instance)
    return {
        "executor_class": f"{cls.__module__}.{cls.__qualname__}",
        "pickled": base64.b64encode(pickled).decode("ascii"),
        "attributes": instance.to_dict()["attributes"],
    }


class CovalentExecutorAdapter(Executor):
    """Drives one Covalent-style executor instance (stored pickled in ``pickled``)."""

    short_name: ClassVar[str] = "covalent"
    cancel_bound: ClassVar[float] = 15.0

    def __init__(
        self,
        executor_class: str = "",
        pickled: str = "",
        attributes: dict[str, Any] | None = None,
        python_path: str | None = None,
        cancel_grace: float = 3.0,
    ) -> None:
        super().__init__()
        if not pickled:
            raise ExecutorConfigError(
                "the 'covalent' executor runs an executor written for Covalent; pass an instance "
                "of your BaseExecutor subclass as the electron's executor instead of the name"
            )
        self.executor_class = executor_class
        self.pickled = base64.b64decode(pickled)
        self.python_path = python_path or sys.executable
        self.cancel_grace = cancel_grace

    async def upload(self, task: TaskContext) -> None:
        """Write the task, the executor and the task's metadata into a private directory."""
        assert task.payload is not None
        root = config.data_dir() / "covalent-executors"
        root.mkdir(mode=0o700, exist_ok=True)
        directory = root / f"{task.dispatch_id}-{task.node_id}-{uuid.uuid4().hex[:8]}"
        directory.mkdir(mode=0o700)
        task.state["dir"] = directory
        metadata = {
            "dispatch_id": task.dispatch_id,
            "node_id": task.node_id,
            "results_dir": str(config.data_dir() / "results"),
        }
        for name, data in (
            (PAYLOAD_FILE, task.payload),
            (EXECUTOR_FILE, self.pickled),
            (METADATA_FILE, json.dumps(metadata).encode()),
        ):
            with private_open(directory / name, "wb") as fh:
                fh.write(data)

    async def run(self, task: TaskContext) -> None:
        """Start the executor's process; its handle is stored before ``run()`` is called."""
        directory: Path = task.state["dir"]
        argv = [self.python_path, "-m", "covalent_core.executor.adapter_runner", "run"]
        with (
            private_open(directory / STDOUT_FILE, "wb") as out,
            private_open(directory / STDERR_FILE, "wb") as err,
        ):
            proc = await start_gated(
                [*argv, str(directory)],
                directory / STARTED_FILE,
                stdout=out,
                stderr=err,
                env=config.child_environment(),
            )
        try:
            await task.set_job_handle({**proc.handle.to_dict(), "dir": str(directory)})
            await proc.release()
            task.state["returncode"] = await proc.wait()
        except BaseException:
            await asyncio.to_thread(kill_group, proc.handle, self.cancel_grace)
            raise

    async def reattach(self, task: TaskContext, job_handle: str | None) -> bool:
        """Wait for the executor's process a dead dispatcher started; fetch reads its outcome."""
        if job_handle is None:
            return False  # the process runs only once its handle is stored
        directory = Path(json.loads(job_handle)["dir"])
        task.state["dir"] = directory
        handle = ProcessHandle.from_json(job_handle)
        await wait_for_exit(handle)
        if (directory / OUTCOME_FILE).exists():
            return True
        if not (directory / STARTED_FILE).exists():
            return False
        raise JobLostError(
            f"the executor's process {handle.pid} is gone and left no outcome in {directory}"
        )

    async def fetch(self, task: TaskContext) -> None:
        """Read the outcome; the executor's task_stdout/task_stderr follow the process's own."""
        directory: Path = task.state["dir"]
        stdout = _read(directory / STDOUT_FILE)
        stderr = _read(directory / STDERR_FILE)
        outcome_file = directory / OUTCOME_FILE
        if not outcome_file.exists():
            task.outcome = TaskOutcome.died(
                f"the executor's process ended without an outcome: "
                f"{describe_exit(task.state.get('returncode'))}",
                stdout,
                stderr,
            )
            return
        raw = loads_plain(outcome_file.read_bytes())
        task.outcome = TaskOutcome(
            ok=raw["ok"],
            output=raw.get("output"),
            error=raw.get("error"),
            traceback=raw.get("traceback"),
            stdout=stdout + raw.get("task_stdout", ""),
            stderr=stderr + raw.get("task_stderr", ""),
            output_repr=raw.get("output_repr"),
        )

    async def cleanup(self, task: TaskContext) -> None:
        """Remove the task's directory."""
        directory = task.state.get("dir")
        if directory is not None:
            await asyncio.to_thread(shutil.rmtree, directory, True)

    async def cancel(self, task_metadata: dict[str, Any], job_handle: str) -> bool:
        """Flag the cancel, call the executor's cancel with its job handle, stop the process."""
        data = json.loads(job_handle)
        directory = Path(data["dir"])
        confirmed = True
        if directory.is_dir():
            (directory / CANCEL_FLAG_FILE).touch()
            confirmed = await self._executor_cancel(directory)
        handle = ProcessHandle.from_json(job_handle)
        stopped = await asyncio.to_thread(kill_group, handle, self.cancel_grace)
        return stopped and confirmed

    async def _executor_cancel(self, directory: Path) -> bool:
        proc = await asyncio.create_subprocess_exec(
            self.python_path,
            "-m",
            "covalent_core.executor.adapter_runner",
            "cancel",
            str(directory),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=config.child_environment(),
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), CANCEL_CALL_TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            raise RuntimeError(
                f"{self.executor_class}.cancel() did not return within {CANCEL_CALL_TIMEOUT:g} s"
            ) from None
        if proc.returncode != 0:
            raise RuntimeError(
                f"{self.executor_class}.cancel() failed: {err.decode(errors='replace')[-2000:]}"
            )
        return bool(json.loads(out.decode().strip().splitlines()[-1])["confirmed"])


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


@hookimpl
def covalent_executor_classes() -> list[type[Executor]]:
    """The adapter is registered like any plugin's executor."""
    return [CovalentExecutorAdapter]
