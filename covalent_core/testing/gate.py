"""A plugin the conformance suite loads into the dispatcher: records and holds task stages.

For every stage hook it wraps the awaitable the executor returned, recording when the stage
starts and ends (``events/<task name>.jsonl``). A rule file ``rules/<task name>`` containing
``after:<stage>`` holds the task once that stage has finished, until ``release/<task name>``
exists or a cancel is requested. The suite uses it to cancel a task exactly between two stages
and to check, from the core's side, which stages never ran.

It lives in ``$COVALENT_CORE_DATA_DIR/conformance`` and does nothing for tasks without rules
other than record their stages. It is not loaded unless ``COVALENT_CORE_EXTRA_PLUGINS``
names it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Generator
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from ..sdk.base import Executor, TaskContext


def gate_dir() -> Path:
    """Where rules, releases and events live for the current data directory."""
    return Path(os.environ["COVALENT_CORE_DATA_DIR"]) / "conformance"


def _record(name: str, event: str) -> None:
    events = gate_dir() / "events"
    events.mkdir(parents=True, exist_ok=True)
    with open(events / f"{name}.jsonl", "a") as fh:
        fh.write(json.dumps({"event": event, "t": time.time()}) + "\n")


async def _hold(task: TaskContext) -> None:
    release = gate_dir() / "release" / task.name
    _record(task.name, f"holding:{task.state.get('_gate_after')}")
    while not release.exists():
        if task.cancel_requested:
            _record(task.name, "saw-cancel")
            return
        await asyncio.sleep(0.01)


async def _wrapped(stage: str, task: TaskContext, inner: Awaitable[Any]) -> Any:
    _record(task.name, f"start:{stage}")
    result = await inner
    _record(task.name, f"end:{stage}")
    rule = gate_dir() / "rules" / task.name
    held = stage not in ("cleanup", "reattach") and rule.exists()
    if held and rule.read_text().strip() == f"after:{stage}":
        task.state["_gate_after"] = stage
        await _hold(task)
    return result


def _wrap(stage: str, task: TaskContext) -> Generator[None, Any, Any]:
    inner = yield
    if inner is None:
        return None
    return _wrapped(stage, task, inner)


@hookimpl(wrapper=True)
def covalent_pickle(executor: Executor, task: TaskContext) -> Generator[None, Any, Any]:
    """Record the pickle stage; hold after it if a rule says so."""
    return (yield from _wrap("pickle", task))


@hookimpl(wrapper=True)
def covalent_upload(executor: Executor, task: TaskContext) -> Generator[None, Any, Any]:
    """Record the upload stage; hold after it if a rule says so."""
    return (yield from _wrap("upload", task))


@hookimpl(wrapper=True)
def covalent_provision(executor: Executor, task: TaskContext) -> Generator[None, Any, Any]:
    """Record the provision stage; hold after it if a rule says so."""
    return (yield from _wrap("provision", task))


@hookimpl(wrapper=True)
def covalent_run(executor: Executor, task: TaskContext) -> Generator[None, Any, Any]:
    """Record the run stage; hold after it if a rule says so."""
    return (yield from _wrap("run", task))


@hookimpl(wrapper=True)
def covalent_reattach(
    executor: Executor, task: TaskContext, job_handle: str | None
) -> Generator[None, Any, Any]:
    """Record a re-attach (a new dispatcher taking the task's job over)."""
    return (yield from _wrap("reattach", task))


@hookimpl(wrapper=True)
def covalent_fetch(executor: Executor, task: TaskContext) -> Generator[None, Any, Any]:
    """Record the fetch stage; hold after it if a rule says so."""
    return (yield from _wrap("fetch", task))


@hookimpl(wrapper=True)
def covalent_cleanup(executor: Executor, task: TaskContext) -> Generator[None, Any, Any]:
    """Record the cleanup stage."""
    return (yield from _wrap("cleanup", task))
