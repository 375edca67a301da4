"""The core's built-in stage implementations: each stage calls the executor's method of that name.

Registered first, as an ordinary plugin, and marked ``trylast`` so that any other plugin's
implementation of a stage takes precedence.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from .hookspecs import hookimpl
from .sdk.base import Executor, TaskContext


async def _instantiate(executor_class: type[Executor], config: dict[str, Any]) -> Executor:
    return executor_class(**config)


@hookimpl(trylast=True)
def covalent_instantiate(
    executor_class: type[Executor], config: dict[str, Any]
) -> Awaitable[Executor]:
    """Default: ``executor_class(**config)``."""
    return _instantiate(executor_class, config)


@hookimpl(trylast=True)
def covalent_pickle(executor: Executor, task: TaskContext) -> Awaitable[None]:
    """Default: ``executor.pickle(task)``."""
    return executor.pickle(task)


@hookimpl(trylast=True)
def covalent_upload(executor: Executor, task: TaskContext) -> Awaitable[None]:
    """Default: ``executor.upload(task)``."""
    return executor.upload(task)


@hookimpl(trylast=True)
def covalent_provision(executor: Executor, task: TaskContext) -> Awaitable[None]:
    """Default: ``executor.provision(task)``."""
    return executor.provision(task)


@hookimpl(trylast=True)
def covalent_run(executor: Executor, task: TaskContext) -> Awaitable[None]:
    """Default: ``executor.run(task)``."""
    return executor.run(task)


@hookimpl(trylast=True)
def covalent_fetch(executor: Executor, task: TaskContext) -> Awaitable[None]:
    """Default: ``executor.fetch(task)``."""
    return executor.fetch(task)


@hookimpl(trylast=True)
def covalent_cleanup(executor: Executor, task: TaskContext) -> Awaitable[None]:
    """Default: ``executor.cleanup(task)``."""
    return executor.cleanup(task)


@hookimpl(trylast=True)
def covalent_reattach(
    executor: Executor, task: TaskContext, job_handle: str | None
) -> Awaitable[bool]:
    """Default: ``executor.reattach(task, job_handle)``."""
    return executor.reattach(task, job_handle)


@hookimpl(trylast=True)
def covalent_cancel(
    executor: Executor, task_metadata: dict[str, Any], job_handle: str
) -> Awaitable[bool]:
    """Default: ``executor.cancel(task_metadata, job_handle)``."""
    return executor.cancel(task_metadata, job_handle)


@hookimpl(trylast=True)
def covalent_read_output(
    executor: Executor, task_metadata: dict[str, Any], job_handle: str, stream: str
) -> Awaitable[str | None]:
    """Default: ``executor.read_output(task_metadata, job_handle, stream)``."""
    return executor.read_output(task_metadata, job_handle, stream)
