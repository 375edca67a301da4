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
later one runs; cleanup still does. ``covalent_cancel`` stops a running job;
``covalent_read_output`` reads what a running job has printed so far.

When a dispatcher service dies (SIGKILL, a reboot of the login node) its jobs keep running.
The next service calls ``covalent_reattach`` for every task the dead one had started, instead
of ``run``: it waits for the job, then ``fetch`` and ``cleanup`` follow as if nothing had
happened. See :func:`covalent_reattach` for what it returns.

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
* **Re-attach.** ``reattach(task, job_handle)`` rebuilds ``task.state`` from the handle and
  the task's ids alone (in a new process), waits for the job to end, and never starts a job
  that may already exist: names of remote paths and jobs derive from the dispatch and node
  ids, so a stage that was cut short can be redone or found.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .sdk.base import Executor, TaskContext

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
    :class:`~covalent_core.sdk.base.Executor` and set a unique ``short_name``.
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
    that :mod:`covalent_core.sdk.runner` runs. Stops at first non-None result.
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


@hookspec(firstresult=True)
def covalent_reattach(
    executor: Executor, task: TaskContext, job_handle: str | None
) -> Awaitable[bool] | None:
    """Resume watching a task that a dispatcher which has since died had started.

    Called by a new dispatcher service, instead of ``run``, for every node the dead one left
    RUNNING, with the handle it had stored (None if it died before storing one). The executor
    rebuilds ``task.state`` from the handle and the task's ids, then:

    * with a handle: waits for the job to end and returns True; ``fetch`` then brings the
      outcome, which may have been written while no dispatcher ran. If the resource has no
      trace of the job (no process and no outcome, a job id the scheduler has forgotten), it
      raises :class:`~covalent_core.errors.JobLostError` saying what it looked for: the node
      fails with reason ``dispatcher lost``.
    * without a handle: looks for a job it may have started for this task (by the name, tag,
      client token or directory it derives from the dispatch and node ids). Found: it stores
      the handle with ``task.set_job_handle``, waits for it and returns True. Not found: it
      returns False, and the dispatcher starts the task from the beginning, once.

    A cancel that arrives meanwhile is handled as during ``run``: ``covalent_cancel`` with
    the stored handle, then this awaitable must return. Default:
    ``executor.reattach(task, job_handle)``; an executor without it raises
    ``NotImplementedError``, and the dispatcher then stops the job (as it would have been
    stopped before re-attaching existed) and fails the node with reason ``dispatcher lost``.
    Stops at first non-None result.
    May raise: :class:`~covalent_core.errors.JobLostError`; errors reaching the resource.
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


# ---------------------------------------------------------------------------
# Watching
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def covalent_read_output(
    executor: Executor, task_metadata: dict[str, Any], job_handle: str, stream: str
) -> Awaitable[str | None] | None:
    """What the running job ``job_handle`` has written so far to ``stream`` ("stdout" or
    "stderr"); the awaitable returns the text, or None when the executor cannot tell.

    Called by the dispatcher service while a client watches a running task's output (``logs
    -f``, ``watch``, ``NodeResult.stdout``), about once a second; works from the stored
    configuration and the handle alone, as ``cancel`` does. What a task printed is stored with
    the node when it ends, whatever way it ends: this hook is only for the time between.
    Default: ``executor.read_output(task_metadata, job_handle, stream)``.
    Stops at first non-None result.
    May raise: anything on failure to reach the resource; the reader gets None.
    """
