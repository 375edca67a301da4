"""Covalent's executor interface: ``BaseExecutor`` and ``AsyncBaseExecutor``.

An executor written for Covalent (``from covalent.executor.base import BaseExecutor``) runs
here with one changed import (``from covalent_core.executor.base import BaseExecutor``).
Each of its tasks runs in a killable process of its own (``setup``, ``run``, ``teardown``),
where ``set_job_handle`` and ``get_cancel_requested`` work as in Covalent; cancelling the task
calls the executor's ``cancel(task_metadata, job_handle)`` with the handle it set, then stops
that process. See :mod:`covalent_core.executor.adapter` for how it is driven.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from ..errors import TaskCancelledError
from ..permissions import private_open

# Files in the task's directory through which the running executor talks to covalent-core.
JOB_HANDLE_FILE = "job_handle.json"
CANCEL_FLAG_FILE = "cancel_requested"


class TaskRuntimeError(RuntimeError):
    """Covalent's error for a task that failed inside an executor's ``run``."""


class _ShortName(str):
    """A name that is both ``cls.short_name`` (ours) and ``self.short_name()`` (Covalent's)."""

    def __call__(self) -> str:
        return str(self)


class _AbstractBaseExecutor:
    """What Covalent's two executor bases share: options, streams, the job handle, cancel flag."""

    SUPPORTS_MANAGED_EXECUTION: ClassVar[bool] = False
    short_name: ClassVar[_ShortName] = _ShortName("base")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "short_name" not in cls.__dict__:
            # Covalent's rule: the last part of the module that defines the class.
            cls.short_name = _ShortName(cls.__module__.split("/")[-1].split(".")[-1])

    def __init__(
        self,
        log_stdout: str = "",
        log_stderr: str = "",
        cache_dir: str = "",
        time_limit: int = -1,
        retries: int = 0,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.log_stdout = log_stdout
        self.log_stderr = log_stderr
        self.cache_dir = cache_dir
        self.time_limit = time_limit
        self.retries = retries

    # -- Covalent's helpers --------------------------------------------------------------

    @contextlib.contextmanager
    def get_dispatch_context(self, dispatch_info: Any) -> Iterator[Any]:
        """Covalent's dispatch-info context; nothing to set up here."""
        yield dispatch_info

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (Covalent's layout)."""
        attributes = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return {
            "type": str(type(self)),
            "short_name": str(self.short_name),
            "attributes": json.loads(json.dumps(attributes, default=str)),
        }

    def from_dict(self, object_dict: dict[str, Any]) -> _AbstractBaseExecutor:
        """Take attributes from a :meth:`to_dict` description."""
        if object_dict:
            self.__dict__.update(copy.deepcopy(object_dict["attributes"]))
        return self

    @property
    def task_stdout(self) -> Any:
        """Where the executor may write text for the task's stdout (a StringIO during a task)."""
        return self.__dict__.get("_task_stdout")

    @property
    def task_stderr(self) -> Any:
        """Where the executor may write text for the task's stderr (a StringIO during a task)."""
        return self.__dict__.get("_task_stderr")

    def write_streams_to_file(
        self, stream_strings: Any, filepaths: Any, dispatch_id: str, results_dir: str
    ) -> None:
        """Append each stream to its file (relative paths go under ``results_dir/dispatch_id``)."""
        for text, filepath in zip(stream_strings, filepaths, strict=False):
            if not filepath:
                continue
            path = Path(filepath).expanduser()
            if not path.is_absolute():
                path = Path(results_dir) / dispatch_id / path
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with private_open(path, "a") as fh:
                fh.write(text)

    def get_version_info(self) -> dict[str, Any]:
        """The Python and cloudpickle versions of the process running the task."""
        import platform

        import cloudpickle

        return {"python": platform.python_version(), "cloudpickle": cloudpickle.__version__}

    # -- talking to covalent-core while a task runs ------------------------------------

    def _task_dir(self) -> Path | None:
        directory = self.__dict__.get("_covalent_core_task_dir")
        return Path(directory) if directory else None

    def _store_job_handle(self, handle: Any) -> None:
        directory = self._task_dir()
        if directory is None:
            return
        partial = directory / (JOB_HANDLE_FILE + ".partial")
        with private_open(partial, "w") as fh:
            fh.write(json.dumps(handle, default=str))
        os.replace(partial, directory / JOB_HANDLE_FILE)

    def _cancel_flag(self) -> bool:
        directory = self._task_dir()
        return directory is not None and (directory / CANCEL_FLAG_FILE).exists()


class BaseExecutor(_AbstractBaseExecutor):
    """Covalent's synchronous executor base: implement ``run`` (and ``cancel``, ``setup``, ...)."""

    def setup(self, task_metadata: dict[str, Any]) -> Any:
        """Called before ``run`` in the task's process."""

    def run(
        self,
        function: Callable[..., Any],
        args: list[Any],
        kwargs: dict[str, Any],
        task_metadata: dict[str, Any],
    ) -> Any:
        """Run ``function(*args, **kwargs)`` somewhere and return its output."""
        raise NotImplementedError(f"{type(self).__name__} does not implement run()")

    def teardown(self, task_metadata: dict[str, Any]) -> Any:
        """Called after ``run`` (also after it failed) in the task's process."""

    def cancel(self, task_metadata: dict[str, Any], job_handle: Any) -> bool:
        """Stop the job ``job_handle``; True once it is stopped. Default: nothing to stop."""
        return False

    def set_job_handle(self, handle: Any) -> None:
        """Record the job's handle (JSON-ready) so that a cancel can reach the job."""
        self._store_job_handle(handle)

    def get_cancel_requested(self) -> bool:
        """True once the task has been cancelled; check it before long or costly steps."""
        return self._cancel_flag()


class AsyncBaseExecutor(_AbstractBaseExecutor):
    """Covalent's asynchronous executor base: the same interface with coroutines."""

    async def setup(self, task_metadata: dict[str, Any]) -> Any:
        """Called before ``run`` in the task's process."""

    async def run(
        self,
        function: Callable[..., Any],
        args: list[Any],
        kwargs: dict[str, Any],
        task_metadata: dict[str, Any],
    ) -> Any:
        """Run ``function(*args, **kwargs)`` somewhere and return its output."""
        raise NotImplementedError(f"{type(self).__name__} does not implement run()")

    async def teardown(self, task_metadata: dict[str, Any]) -> Any:
        """Called after ``run`` (also after it failed) in the task's process."""

    async def cancel(self, task_metadata: dict[str, Any], job_handle: Any) -> bool:
        """Stop the job ``job_handle``; True once it is stopped. Default: nothing to stop."""
        return False

    async def set_job_handle(self, handle: Any) -> None:
        """Record the job's handle (JSON-ready) so that a cancel can reach the job."""
        self._store_job_handle(handle)

    async def get_cancel_requested(self) -> bool:
        """True once the task has been cancelled; check it before long or costly steps."""
        return self._cancel_flag()


def is_covalent_executor(value: Any) -> bool:
    """True for an instance or subclass of Covalent's executor interface."""
    cls = value if isinstance(value, type) else type(value)
    return issubclass(cls, _AbstractBaseExecutor)


__all__ = [
    "AsyncBaseExecutor",
    "BaseExecutor",
    "TaskCancelledError",
    "TaskRuntimeError",
    "is_covalent_executor",
]
