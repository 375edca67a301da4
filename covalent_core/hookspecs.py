"""Hook specifications: the stages every task goes through, in the order they run.

A plugin is a module (or object) with functions marked ``@hookimpl`` and named as below; it
is found through the ``covalent_core.plugins`` entry-point group. The core's own
implementations (:mod:`covalent_core.hookimpls`) are registered first, as a plugin like any
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

The contract an executor keeps (``docs/writing-an-executor.md`` walks through an example):

* **Errors.** Any exception from a stage fails the node with the stage's name and the
  exception's message (say what was wrong and what to do). Raise
  :class:`~covalent_core.errors.TaskCancelledError` (``task.check_cancelled()``) to stop because
  of a cancel; :class:`~covalent_core.errors.ExecutorConfigError` for bad options.
* **Job handle.** ``run`` calls ``await task.set_job_handle(...)`` as soon as the job exists and
  before its code can finish; the call returns once the handle is stored. The handle names the
  resource as well as the job (host and PID with start time, cluster and job id, region and
  job id, ARN), so that ``cancel`` needs nothing else.
* **Cancellation inside a stage.** A cancel interrupts ``pickle``, ``upload``, ``provision``
  and ``fetch`` with ``asyncio.CancelledError`` at their next ``await``; blocking work in a
  thread is not interrupted, so loops there must check ``task.cancel_requested`` between
  steps (each chunk of an upload, each poll of a queue) and must never start a job after it is
  set. During ``run`` the dispatcher calls ``cancel`` with the stored handle and waits for
  ``run`` to return: ``run`` must notice that its job ended and must not retry or resubmit a
  job once ``task.cancel_requested`` is set.
* **Cancel.** ``cancel(task_metadata, job_handle)`` works from the executor's stored
  configuration and the handle alone (a fresh process, another machine), returns True only
  once the resource confirms the job is gone (True for a job that already ended), stays
  within the executor's ``cancel_bound``, and is safe to call twice.
* **Cleanup.** ``cleanup`` removes everything earlier stages made, on the resource and
  locally, after success, failure and cancel alike.
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
    May raise: anything; the plugin is then listed as failed, others still load.
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
    May raise: :class:`~covalent_core.errors.ExecutorConfigError` for options it rejects.
    """


@hookspec(firstresult=True)
def covalent_pickle(executor: Executor, task: TaskContext) -> Awaitable[None] | None:
    """Serialize the task into ``task.payload``.

    Called after instantiate. Default: ``executor.pickle(task)``, which builds the payload
    that :mod:`covalent_core.executors.runner` runs. Stops at first non-None result.
    May raise: :class:`~covalent_core.errors.SerializationError` naming the
    argument that cannot be pickled.
    """


@hookspec(firstresult=True)
def covalent_upload(executor: Executor, task: TaskContext) -> Awaitable[None] | None:
    """Copy the payload to where the job will read it.

    Called after pickle. Default: ``executor.upload(task)``. A cancel requested during the
    upload cancels the awaitable (``asyncio.CancelledError`` inside it); cleanup then runs.
    Stops at first non-None result.
    May raise: transfer errors (unreachable host, missing bucket), with what to fix.
    """


@hookspec(firstresult=True)
def covalent_provision(executor: Executor, task: TaskContext) -> Awaitable[None] | None:
    """Create or reserve what the job runs on (batch script, job definition, device).

    Called after upload. Default: ``executor.provision(task)``. Stops at first non-None result.
    May raise: :class:`~covalent_core.errors.ExecutorConfigError` when the resource
    lacks what the task needs (interpreter, package, queue), naming it.
    """


@hookspec(firstresult=True)
def covalent_run(executor: Executor, task: TaskContext) -> Awaitable[None] | None:
    """Start the job, store its handle with ``task.set_job_handle``, and wait until it ends.

    Called after provision. The handle must be stored before the task's code can finish.
    When a cancel arrives the dispatcher calls ``covalent_cancel`` with the stored handle and
    waits for this awaitable to return. Default: ``executor.run(task)``.
    Stops at first non-None result.
    May raise: submission errors (the scheduler's own message). A job that
    ends badly is not an error here: fetch describes it in ``task.outcome``.
    """


@hookspec(firstresult=True)
def covalent_fetch(executor: Executor, task: TaskContext) -> Awaitable[None] | None:
    """Bring the outcome back into ``task.outcome`` (output or error, stdout, stderr).

    Called after run. Default: ``executor.fetch(task)``. Stops at first non-None result.
    May raise: transfer errors; a missing outcome is described, not raised.
    """


@hookspec(firstresult=True)
def covalent_cleanup(executor: Executor, task: TaskContext) -> Awaitable[None] | None:
    """Remove what earlier stages created, after success, failure or cancel.

    Called once for every task whose executor was instantiated, whatever happened. Errors are
    recorded on the node and do not change its status. Default: ``executor.cleanup(task)``.
    Stops at first non-None result.
    May raise: anything; the error is recorded, the node keeps its status.
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
    May raise: anything on failure to reach the resource; it is retried.
    """
