"""The executor base class and the per-task context handed to every stage.

An executor implements the stages of a task as async methods. The core calls them through
the pluggy hooks in :mod:`covalent_core.hookspecs`, in this order::

    instantiate -> pickle -> upload -> provision -> run -> fetch, then cleanup

and checks the node's cancel flag before each one. ``cancel(task_metadata, job_handle)``
stops a running job from the executor's stored configuration and the job handle alone.
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import ExecutorConfigError, TaskCancelledError
from ..plain_pickle import loads_plain
from ..status import Stage


@dataclass
class TaskOutcome:
    """What a task produced: its output (cloudpickle bytes) or its error."""

    ok: bool
    output: bytes | None = None
    error: str | None = None
    traceback: str | None = None
    stdout: str = ""
    stderr: str = ""
    output_repr: str | None = None
    """``str()`` of the output when it is short, so clients can show it without unpickling."""

    @classmethod
    def from_runner(cls, data: bytes, stdout: str = "", stderr: str = "") -> TaskOutcome:
        """Decode what :func:`covalent_core.sdk.runner.execute` returned."""
        raw = loads_plain(data)  # made where user code ran: plain values only
        return cls(
            ok=raw["ok"],
            output=raw.get("output"),
            error=raw.get("error"),
            traceback=raw.get("traceback"),
            stdout=stdout,
            stderr=stderr,
            output_repr=raw.get("output_repr"),
        )

    @classmethod
    def died(cls, message: str, stdout: str = "", stderr: str = "") -> TaskOutcome:
        """The task's process or job ended without producing an outcome."""
        return cls(ok=False, error=message, stdout=stdout, stderr=stderr)

    @staticmethod
    def texts(stdout: bytes | None, stderr: bytes | None) -> tuple[str, str]:
        """A task's stdout and stderr as read from its files (missing: empty), as text; also
        what an executor sets as ``task.streams`` for a task stopped before it ended."""
        return (stdout or b"").decode(errors="replace"), (stderr or b"").decode(errors="replace")

    @classmethod
    def from_files(
        cls,
        outcome: bytes | None,
        stdout: bytes | None,
        stderr: bytes | None,
        died: Callable[[], str],
    ) -> TaskOutcome:
        """The outcome of a task read back as files: the runner's ``outcome`` with the task's
        stdout and stderr, or, without an outcome, ``died()`` saying how the job ended."""
        out, err = cls.texts(stdout, stderr)
        if outcome is not None:
            return cls.from_runner(outcome, out, err)
        return cls.died(died(), out, err)


# The probe that a task's interpreter can run our runner: it needs cloudpickle.
CLOUDPICKLE_PROBE = ("-c", "import cloudpickle")


def interpreter_error(
    python: str, where: str, exit_status: int | None, stderr: str = ""
) -> ExecutorConfigError | None:
    """What is wrong with the interpreter that ran :data:`CLOUDPICKLE_PROBE` (None: nothing).

    ``exit_status`` 127 (or None) means the interpreter was not found.
    """
    if exit_status == 0:
        return None
    if exit_status in (None, 127):
        return ExecutorConfigError(
            f"python_path {python!r} was not found on {where}; give the interpreter's path "
            "(e.g. python_path='/usr/bin/python3')"
        )
    detail = f" ({stderr.strip().splitlines()[-1]})" if stderr.strip() else ""
    return ExecutorConfigError(
        f"{python!r} on {where} cannot import cloudpickle{detail}; install it there "
        f"(`{python} -m pip install cloudpickle`) or choose another python_path"
    )


class Batch:
    """Tasks of one dispatch that the dispatcher admitted together to one slot of their
    executor, to run as one pack (see :attr:`Executor.pack_size`).

    Each member arrives at its executor's ``run`` on its own; the pack forms once every
    member that is still going has arrived (those cancelled or failed before it leave)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.holding = size
        """Members still holding the slot (it is free again once none does)."""
        self._arrived: list[Any] = []
        self._form: Callable[[list[Any]], None] | None = None
        self._left: set[int] = set()

    def arrive(self, member: Any, form: Callable[[list[Any]], None]) -> None:
        """``member`` is ready to run; ``form(members)`` is called once all have come."""
        self._arrived.append(member)
        self._form = form
        self._check()

    def leave(self, key: int) -> None:
        """The member ``key`` (a node id) will not arrive (it ended before its run stage),
        or has arrived and is taken back (cancelled before its pack formed)."""
        if key in self._left:
            return
        self._left.add(key)
        self.size -= 1
        self._check()

    def depart(self, member: Any, key: int) -> bool:
        """Take back ``member``, which arrived, if its pack has not formed; True if so."""
        if member not in self._arrived:
            return False
        self._arrived.remove(member)
        self.leave(key)
        return True

    def _check(self) -> None:
        if self._form is not None and self._arrived and len(self._arrived) >= self.size:
            members, self._arrived = self._arrived, []
            form, self._form = self._form, None
            form(members)


@dataclass
class TaskContext:
    """One task on its way through the stages; executors read and fill it in.

    ``payload`` is set by the pickle stage; ``outcome`` must be set by the end of fetch.
    ``state`` is the executor's own scratch space (remote paths, job ids, ...).
    """

    dispatch_id: str
    node_id: int
    name: str
    executor_name: str
    payload: bytes | None = None
    outcome: TaskOutcome | None = None
    streams: tuple[str, str] | None = None
    """What a task that ended without an outcome (cancelled, stopped) had written to stdout
    and stderr: set by the executor (in ``cancel`` or ``cleanup``), kept by the dispatcher."""
    state: dict[str, Any] = field(default_factory=dict)
    job_handle: str | None = None
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    handle_recorder: Callable[[TaskContext, str], Awaitable[None]] | None = field(
        default=None, repr=False
    )
    """Given by the dispatcher: stores a handle durably (executors call :meth:`set_job_handle`)."""
    payload_factory: Callable[[dict[str, Any] | None], bytes] | None = field(
        default=None, repr=False
    )
    """Given by the dispatcher: pickles the task (executors call :meth:`build_payload`)."""
    batch: Batch | None = field(default=None, repr=False)
    """The tasks admitted with this one to run as one pack (None: it runs alone)."""
    python: str | None = None
    """The interpreter of the process that dispatched the task, when that ran on this host
    (None: elsewhere, or not known): executors that run tasks here run them with it."""

    @property
    def metadata(self) -> dict[str, Any]:
        """The ``task_metadata`` passed to ``Executor.cancel``: dispatch and node ids."""
        return {"dispatch_id": self.dispatch_id, "node_id": self.node_id}

    @classmethod
    def of(cls, task_metadata: dict[str, Any], executor_name: str = "") -> TaskContext:
        """A context holding only the task's ids, from ``task_metadata``: for what works
        from the ids alone (``cancel``, ``read_output``), e.g. naming the task's paths."""
        return cls(
            dispatch_id=str(task_metadata["dispatch_id"]),
            node_id=int(task_metadata["node_id"]),
            name="",
            executor_name=executor_name,
        )

    @property
    def cancel_requested(self) -> bool:
        """True once a cancel (or timeout) was requested for this task."""
        return self.cancelled.is_set()

    def check_cancelled(self, stage: Stage | str | None = None) -> None:
        """Raise :class:`TaskCancelledError` if a cancel was requested; call it in long stages."""
        if self.cancelled.is_set():
            raise TaskCancelledError(self.dispatch_id, self.node_id, str(stage) if stage else None)

    async def set_job_handle(self, handle: str | dict[str, Any]) -> None:
        """Store the job handle durably; call it as soon as the job exists, before it can end.

        The handle must identify the resource as well as the job (host and PID with start
        time, cluster and job id, region and job id, ARN). Tasks packed into one job pass the
        same handle: cancelling any of them then cancels the job and marks them all.
        """
        text = handle if isinstance(handle, str) else json.dumps(handle, sort_keys=True)
        self.job_handle = text
        if self.handle_recorder is not None:
            await self.handle_recorder(self, text)

    def build_payload(
        self,
        cwd: str | None = None,
        *,
        local: bool = False,
        pip_target: str | None = None,
    ) -> bytes:
        """The task's function, inputs and environment, pickled for :mod:`.runner`.

        The task runs in the dispatching process's working directory when that exists where
        it runs; ``cwd`` names another instead (relative: to where the runner is started).
        ``local``: the task runs on the dispatching machine, and sees exactly the environment
        variables the dispatching process had (elsewhere it keeps the resource's own).
        ``pip_target``: the task's ``DepsPip`` packages go into this directory (put first on
        its import path) rather than into the interpreter's environment.
        """
        if self.payload_factory is None:
            raise RuntimeError("this task has no payload factory")
        override: dict[str, Any] = {"cwd": cwd} if cwd else {}
        if pip_target:
            override["pip_target"] = pip_target
        return self.payload_factory({**override, "local": local})


_ANNOTATED = {"int": 0, "float": 0.0, "bool": False, "str": ""}
"""An option without a default to judge by: a value standing for its annotated type."""


def _check_type(cls: type, name: str, value: Any, parameter: inspect.Parameter) -> None:
    """Refuse a value of another kind than the option's default or annotation (a number, a
    flag, a text), naming the option: a config file's ``max_workers = "eight"`` is a clear
    error, not a ``TypeError`` deep in the executor."""
    default = parameter.default
    if default is inspect.Parameter.empty or default is None:
        annotation = str(parameter.annotation).replace(" ", "").removesuffix("|None")
        default = _ANNOTATED.get(annotation)
    if value is None or default is None:
        return
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        kind = "a number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, (str, os.PathLike)), "a string"
    else:
        return
    if not ok:
        raise ExecutorConfigError(
            f"{cls.__name__}: option {name!r} must be {kind}, not {value!r} "
            f"(check [executors.{getattr(cls, 'short_name', '') or '...'}] {name} in the config "
            "file, or the argument)"
        )


class Executor:
    """Base class of executors. Subclass it, set ``short_name``, implement ``run`` and ``cancel``.

    Constructor arguments are the executor's options; they are recorded (as JSON) with every
    node that uses the executor, so ``cancel`` can be called from any process later.
    """

    short_name: ClassVar[str] = ""
    """The name users give as ``executor="..."`` and as ``[executors.<name>]`` in the config."""
    max_concurrency: ClassVar[int] = 64
    """How many tasks of this executor the dispatcher runs at once (per configuration)."""
    cancel_bound: ClassVar[float] = 10.0
    """Seconds within which ``cancel`` confirms that a running job is gone."""
    secret_options: ClassVar[frozenset[str]] = frozenset()
    """Options never stored in the database (passwords, tokens)."""
    jobs_outlive_host: ClassVar[bool] = True
    """Its jobs run on their own resource and go on if this machine loses power: each job
    handle is committed to disk before the job may start, so that the next dispatcher finds
    it. False (the local executor): its tasks die with the machine, and their handles need
    only survive a crash of the dispatcher's process, which is cheaper."""
    handle_before_start: ClassVar[bool] = False
    """True if a second start after a dispatcher crash can never double a job: upload and
    provision only write what a new start rewrites, and ``run`` stores the job handle before
    the job can begin (the local pool, or :func:`~covalent_core.sdk.gated.start_gated`
    with nothing started before it). The dispatcher then saves one store commit per task: it
    need not record durably that the node started before upload. Leave it False when unsure."""

    _config: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Executor:
        self = super().__new__(cls)
        signature = inspect.signature(cls.__init__)
        try:
            bound = signature.bind(None, *args, **kwargs)
        except TypeError as exc:
            accepted = [p for p in signature.parameters if p != "self"]
            hint = ""
            unknown = [k for k in kwargs if k not in signature.parameters]
            close = difflib.get_close_matches(unknown[0], accepted, n=1) if unknown else []
            if close:
                hint = f" Did you mean {close[0]!r}?"
            raise ExecutorConfigError(
                f"{cls.__name__}: {exc}.{hint} Accepted options: {', '.join(accepted) or 'none'}"
            ) from None
        config: dict[str, Any] = {}
        for name, value in list(bound.arguments.items())[1:]:
            parameter = signature.parameters[name]
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                config.update(value)
            else:
                _check_type(cls, name, value, parameter)
                config[name] = value
        self._config = config
        bound.apply_defaults()
        arguments = dict(list(bound.arguments.items())[1:])
        for name, parameter in signature.parameters.items():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(arguments.pop(name, {}))
        self._arguments = arguments
        return self

    def __init__(self) -> None:
        pass

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Unpickled as made: ``__new__`` is given the options again (required ones too)."""
        return (), dict(self._config)

    def __getattr__(self, name: str) -> Any:
        """A constructor argument not kept under its own name, as Covalent's executors expose
        theirs (``SSHExecutor(...).username``): the value given, or its default."""
        arguments = self.__dict__.get("_arguments")
        if name.startswith("_") or arguments is None or name not in arguments:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return arguments[name]

    @classmethod
    def concurrency_for(cls, config: dict[str, Any]) -> int:
        """How many tasks with this configuration may run at once; default ``max_concurrency``."""
        return cls.max_concurrency

    @classmethod
    def pack_size(cls, config: dict[str, Any]) -> int:
        """The most tasks of one dispatch that one slot takes together, as one pack (handed
        to ``run`` with a :class:`Batch` in ``task.batch``); default 1: no packs."""
        return 1

    @property
    def config(self) -> dict[str, Any]:
        """The options this executor was created with, without secrets, JSON-ready."""
        clean = {k: v for k, v in self._config.items() if k not in self.secret_options}
        return json.loads(json.dumps(clean, default=str))

    # -- stages, in the order they run -------------------------------------------------

    async def pickle(self, task: TaskContext) -> None:
        """Serialize the task into ``task.payload``. The default is right for most executors."""
        task.payload = task.build_payload()

    async def upload(self, task: TaskContext) -> None:
        """Copy the payload to where the job will read it. Default: nothing to upload."""

    async def provision(self, task: TaskContext) -> None:
        """Create or reserve what the job runs on (a job definition, a batch script)."""

    async def run(self, task: TaskContext) -> None:
        """Start the job, store its handle with ``task.set_job_handle``, wait for it to end."""
        raise NotImplementedError(f"{type(self).__name__} does not implement run()")

    async def fetch(self, task: TaskContext) -> None:
        """Bring the outcome back into ``task.outcome`` (with stdout and stderr)."""

    async def cleanup(self, task: TaskContext) -> None:
        """Remove what earlier stages created. Runs after success, failure and cancel."""

    async def reattach(self, task: TaskContext, job_handle: str | None) -> bool:
        """Wait for a job a dispatcher that died had started; True once it ended.

        Rebuild ``task.state`` from the handle and the task's ids so that ``fetch`` and
        ``cleanup`` work; raise :class:`~covalent_core.errors.JobLostError` if the resource has
        no trace of the job. Without a handle, find the job this task may have started, store
        its handle and wait for it, or return False if none was started (see
        :func:`covalent_core.hookspecs.covalent_reattach`).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement reattach()")

    def cancel_at_once(self, task_metadata: dict[str, Any], job_handle: str) -> None:
        """Called on the dispatcher's event loop the moment a cancel of the job is decided,
        before anything else is done: start stopping it now if that is cheap and cannot
        block (the local executor sends its first SIGTERM). ``cancel`` follows. Default:
        nothing."""

    async def cancel(self, task_metadata: dict[str, Any], job_handle: str) -> bool:
        """Stop the job ``job_handle`` and return True once the resource confirms it is gone.

        Must work in a fresh process from this executor's stored configuration and the
        handle alone. Return True for a job that already ended. Raise on failure to reach
        the resource; the dispatcher retries with backoff.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement cancel()")

    async def read_output(
        self, task_metadata: dict[str, Any], job_handle: str, stream: str
    ) -> str | None:
        """What the job ``job_handle`` has written so far to ``stream`` ("stdout" or
        "stderr"), while it runs; None when this executor cannot tell.

        Called by the dispatcher service when a client reads a running task's output (``logs
        -f``, ``result.get_node(n).stdout``), once a second or so while someone watches: read
        what the job writes as it goes (its files, its log service), never start anything.
        Must work from the stored configuration and the handle alone, as ``cancel`` does.
        Default: the file ``stream`` in the directory the handle names as ``dir``, when that
        is on this machine.
        """
        from .output import local_output

        return await asyncio.to_thread(local_output, job_handle, stream)

    async def close(self) -> None:
        """Release connections and pools; called when the dispatcher no longer needs it."""

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({options})"
