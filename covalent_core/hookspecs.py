"""Hook specifications: the stages every task goes through, in the order they run.

A plugin is a module (or object) with functions marked ``@hookimpl`` and named as below; it
is found through the ``covalent_core.plugins`` entry-point group. The core's own
implementations (:mod:`covalent_core.stages`) are registered first, as a plugin like any
other, and run last (``trylast``): a plugin hook that returns a non-None value replaces them.

For each task the dispatcher calls, in order::

    covalent_instantiate   make (or reuse) the executor from its stored configuration
    covalent_pickle        serialize the function, inputs and environment
    covalent_upload        copy the payload to the resource
    covalent_provision     create what the job runs on
    covalent_run           start the job, store its handle, wait for it to end
    covalent_fetch         bring back the outcome, stdout and stderr
    covalent_cleanup       remove what earlier stages created (always, after any stage ran)

Before each of the first six the node's ``cancel_requested`` flag is checked; when it is set,
:class:`~covalent_core.errors.TaskCancelledError` is raised and neither that stage nor any
later one runs; cleanup still does. ``covalent_cancel`` stops a running job.

Every stage hook is ``firstresult``: the first non-None result is used, and for the stage
hooks that result is an awaitable the dispatcher awaits.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .executors.base import Executor, TaskContext

PROJECT = "covalent_core"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# ---------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------


@hookspec
def covalent_executor_classes() -> list[type[Executor]]:
    """Return the executor classes this plugin provides.

    Called once, when the plugin manager is built. Each class must subclass
    :class:`~covalent_core.executors.base.Executor` and set a unique ``short_name``.
    Results of all plugins are collected; returning None or ``[]`` provides nothing.
    """


# ---------------------------------------------------------------------------
# Stages of one task, in the order they run
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def covalent_instantiate(
    executor_class: type[Executor], config: dict[str, Any]
) -> Awaitable[Executor] | None:
    """Create the executor that will run a task, from its stored configuration.

    Called when the first stage that needs the executor is about to start, after checking the
    cancel flag: a task cancelled before this never instantiates its executor. The dispatcher
    reuses the result for every task with the same class and configuration.
    Default: ``executor_class(**config)``. Stops at first non-None result.
    """


@hookspec(firstresult=True)
def covalent_pickle(executor: Executor, task: TaskContext) -> Awaitable[None] | None:
    """Serialize the task into ``task.payload``.

    Called after instantiate. Default: ``executor.pickle(task)``, which builds the payload
    that :mod:`covalent_core.runner` runs. Stops at first non-None result.
    """


@hookspec(firstresult=True)
def covalent_upload(executor: Executor, task: TaskContext) -> Awaitable[None] | None:
    """Copy the payload to where the job will read it.

    Called after pickle. Default: ``executor.upload(task)``. A cancel requested during the
    upload cancels the awaitable (``asyncio.CancelledError`` inside it); cleanup then runs.
    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def covalent_provision(executor: Executor, task: TaskContext) -> Awaitable[None] | None:
    """Create or reserve what the job runs on (batch script, job definition, device).

    Called after upload. Default: ``executor.provision(task)``. Stops at first non-None result.
    """


@hookspec(firstresult=True)
def covalent_run(executor: Executor, task: TaskContext) -> Awaitable[None] | None:
    """Start the job, store its handle with ``task.set_job_handle``, and wait until it ends.

    Called after provision. The handle must be stored before the task's code can finish.
    When a cancel arrives the dispatcher calls ``covalent_cancel`` with the stored handle and
    waits for this awaitable to return. Default: ``executor.run(task)``.
    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def covalent_fetch(executor: Executor, task: TaskContext) -> Awaitable[None] | None:
    """Bring the outcome back into ``task.outcome`` (output or error, stdout, stderr).

    Called after run. Default: ``executor.fetch(task)``. Stops at first non-None result.
    """


@hookspec(firstresult=True)
def covalent_cleanup(executor: Executor, task: TaskContext) -> Awaitable[None] | None:
    """Remove what earlier stages created, after success, failure or cancel.

    Called once for every task whose executor was instantiated, whatever happened. Errors are
    recorded on the node and do not change its status. Default: ``executor.cleanup(task)``.
    Stops at first non-None result.
    """


# ---------------------------------------------------------------------------
# Cancellation
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def covalent_cancel(
    executor: Executor, task_metadata: dict[str, Any], job_handle: str
) -> Awaitable[bool] | None:
    """Stop the job ``job_handle``; the awaitable returns True once the resource confirms it.

    Called by the dispatcher when a running task is cancelled or times out, and by a fresh
    process (CLI, recovery) with an executor built from the stored configuration. Raising or
    returning False makes the dispatcher retry with backoff while the node stays CANCELLING.
    Default: ``executor.cancel(task_metadata, job_handle)``. Stops at first non-None result.
    """
