"""The process that runs one task through an executor written for Covalent.

``python -m covalent_core.executor.adapter_runner run DIR`` unpickles the executor and the
task from ``DIR``, calls ``setup``, ``run(function, args, kwargs, task_metadata)`` and
``teardown`` (awaiting them for an ``AsyncBaseExecutor``), and writes the outcome to
``DIR/outcome`` in :mod:`covalent_core.sdk.runner`'s format. ``... cancel DIR`` calls the
executor's ``cancel(task_metadata, job_handle)`` with the handle the running task set, and
prints ``{"confirmed": bool}``. Executors run only in these processes, never in the service.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import io
import json
import os
import pickle
import sys
import traceback
from pathlib import Path
from typing import Any

import cloudpickle

from ..permissions import private_open
from ..sdk import runner
from ..sdk.runner import OUTPUT_REPR_MAX, StepFailed, apply_environment
from .base import CANCEL_FLAG_FILE, JOB_HANDLE_FILE

EXECUTOR_FILE = "executor.pkl"
PAYLOAD_FILE = "payload.pkl"
METADATA_FILE = "task_metadata.json"
OUTCOME_FILE = "outcome"


async def _call(method: Any, *args: Any) -> Any:
    value = method(*args)
    return await value if inspect.isawaitable(value) else value


def _load(directory: Path) -> tuple[Any, dict[str, Any]]:
    """The executor and the task's metadata, in the dispatching process's import path."""
    environment = pickle.loads((directory / PAYLOAD_FILE).read_bytes())[3]
    apply_environment(environment)
    executor = cloudpickle.loads((directory / EXECUTOR_FILE).read_bytes())
    metadata = json.loads((directory / METADATA_FILE).read_text())
    return executor, metadata


async def _run(directory: Path) -> dict[str, Any]:
    executor, metadata = _load(directory)
    function_bytes, args_bytes, kwargs_bytes, environment = pickle.loads(
        (directory / PAYLOAD_FILE).read_bytes()
    )
    executor._covalent_core_task_dir = str(directory)
    executor._task_stdout = io.StringIO()
    executor._task_stderr = io.StringIO()
    function = cloudpickle.loads(function_bytes)
    hooks = environment.get("hooks") if environment else None
    if hooks:
        # The task's environment runs wherever the executor runs the function; the runner's
        # code travels with it (it needs only cloudpickle).
        cloudpickle.register_pickle_by_value(runner)
        function = functools.partial(
            runner.call_with_steps, function, pickle.loads(hooks), environment
        )
    args = [cloudpickle.loads(b) for b in args_bytes]
    kwargs = {k: cloudpickle.loads(b) for k, b in kwargs_bytes.items()}
    outcome: dict[str, Any]
    try:
        await _call(executor.setup, metadata)
        if (directory / CANCEL_FLAG_FILE).exists():
            raise RuntimeError("the task was cancelled before the executor's run() started")
        value = await _call(executor.run, function, args, kwargs, metadata)
        text = str(value) if value is not None else "None"
        outcome = {
            "ok": True,
            "output": cloudpickle.dumps(value),
            "output_repr": text if len(text) <= OUTPUT_REPR_MAX else None,
        }
    except BaseException as exc:
        outcome = {
            "ok": False,
            "error": str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    finally:
        try:
            await _call(executor.teardown, metadata)
        except Exception as exc:
            print(f"the executor's teardown() failed: {exc!r}", file=sys.stderr)
    outcome["task_stdout"] = executor._task_stdout.getvalue()
    outcome["task_stderr"] = executor._task_stderr.getvalue()
    executor.write_streams_to_file(
        (outcome["task_stdout"], outcome["task_stderr"]),
        (getattr(executor, "log_stdout", ""), getattr(executor, "log_stderr", "")),
        metadata["dispatch_id"],
        metadata.get("results_dir", str(directory)),
    )
    return outcome


async def _cancel(directory: Path) -> dict[str, Any]:
    handle_file = directory / JOB_HANDLE_FILE
    if not handle_file.exists():
        return {"confirmed": True, "called": False}
    executor, metadata = _load(directory)
    confirmed = await _call(executor.cancel, metadata, json.loads(handle_file.read_text()))
    return {"confirmed": bool(confirmed), "called": True}


def main(argv: list[str] | None = None) -> int:
    """``run DIR`` or ``cancel DIR``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("run", "cancel"):
        print("usage: adapter_runner run|cancel DIR", file=sys.stderr)
        return 2
    directory = Path(argv[1]).resolve()
    if argv[0] == "cancel":
        print(json.dumps(asyncio.run(_cancel(directory))))
        return 0
    outcome = asyncio.run(_run(directory))
    partial = directory / (OUTCOME_FILE + ".partial")
    with private_open(partial, "wb") as fh:
        fh.write(pickle.dumps(outcome))
    os.replace(partial, directory / OUTCOME_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
