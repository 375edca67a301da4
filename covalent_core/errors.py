"""Errors raised by covalent-core: one shallow tree under :class:`CovalentCoreError`."""

from __future__ import annotations

from collections.abc import Iterable


class CovalentCoreError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(CovalentCoreError, ValueError):
    """A setting (an environment variable or the config file) or the data directory cannot be
    used; the message names the setting, where it came from, and what to do."""


class TaskCancelledError(CovalentCoreError):
    """A task was cancelled; raised before a stage that must not run, or inside one that stopped.

    Executors may raise it from inside a long stage when ``task.cancel_requested`` turns true.
    """

    def __init__(self, dispatch_id: str, node_id: int, stage: str | None = None) -> None:
        self.dispatch_id = dispatch_id
        self.node_id = node_id
        self.stage = stage
        where = f" before stage {stage!r}" if stage else ""
        super().__init__(f"task {node_id} of dispatch {dispatch_id} was cancelled{where}")


class AmbiguousDispatchIdError(CovalentCoreError, ValueError):
    """A shortened dispatch id begins more than one dispatch's id."""


class MissingLatticeRecordError(CovalentCoreError):
    """Covalent's name for a dispatch id the store has no record of (base of
    :class:`DispatchNotFoundError`)."""


class TaskRuntimeError(CovalentCoreError):
    """Covalent's name for a task that failed while it ran."""


class CommandNotFoundError(CovalentCoreError):
    """Covalent's name for a command a task needs that is not installed."""


class DispatchNotFoundError(MissingLatticeRecordError, KeyError):
    """No dispatch with this id exists in the store."""

    def __init__(self, dispatch_id: str, known: Iterable[str] = ()) -> None:
        self.dispatch_id = dispatch_id
        known = list(known)
        hint = (
            f" Recent dispatches: {', '.join(known)}." if known else " The store has no dispatches."
        )
        shown = repr(dispatch_id)
        if len(shown) > 80:
            shown = f"{shown[:60]}... ({len(dispatch_id)} characters)"
        super().__init__(
            f"no dispatch {shown} in the store.{hint} "
            "Check the id with `covalent-core list`, and that COVALENT_CORE_DB_URL points at "
            "the store the dispatch was made in."
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class TaskNotFoundError(CovalentCoreError, KeyError):
    """A task id is not a node of the addressed dispatch."""

    def __str__(self) -> str:
        return str(self.args[0])


class DispatchIdTooShortError(CovalentCoreError, ValueError):
    """A prefix of a dispatch id shorter than the shortest one taken."""


class MissingExtraError(CovalentCoreError, ImportError):
    """A feature needs an extra that is not installed (``pip install 'covalent-core[ui]'``)."""


class TriggerNotFoundError(CovalentCoreError, KeyError):
    """No trigger has that id."""

    def __str__(self) -> str:
        return str(self.args[0])


class DispatchTimeoutError(CovalentCoreError, TimeoutError):
    """``get_result(wait=True, timeout=...)`` ran out of time before the dispatch finished."""


class GraphBuildError(CovalentCoreError, ValueError):
    """A lattice's graph cannot be built: an electron called with arguments it cannot take."""


class SerializationError(CovalentCoreError, ValueError):
    """A function, argument or result could not be pickled or unpickled."""


class ExecutorNotFoundError(CovalentCoreError, LookupError):
    """No installed executor has the requested short name."""


class ExecutorConfigError(CovalentCoreError, ValueError):
    """An executor was given an option it does not accept, or a bad value."""


class ExecutorError(CovalentCoreError):
    """An executor could not do something on its resource; base of every plugin's errors.

    Carries what was run and what it said, so callers test fields, not message text:
    ``command`` (argv or API call), ``stdout``, ``stderr``, ``exit_code`` (None for API calls)
    and ``code`` (the resource's own error code, such as ``"ResourceNotFoundException"``).
    """

    def __init__(
        self,
        message: str,
        *,
        command: list[str] | str | None = None,
        stdout: str = "",
        stderr: str = "",
        exit_code: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.command = command
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code
        self.code = code


class JobLostError(ExecutorError):
    """A job a previous dispatcher started is unknown to its resource: no process, no outcome.

    Raised by an executor's ``reattach``; the node then fails with reason ``dispatcher lost``
    and this message, which should say what was looked for and where.
    """


class StoreError(CovalentCoreError):
    """The store cannot be used as it is (damaged, foreign, newer, full); it was not modified."""


class StoreFullError(StoreError):
    """The store could not be written: its disk (or database) is full."""


def store_full_message(where: str) -> str:
    """What a waiting user is told while the dispatcher cannot write the store ``where``."""
    return (
        f"the store's disk is full ({where}): free space there; nothing is lost (the "
        "dispatcher keeps what it could not write, writes it once space allows, and then "
        "ends the dispatches it had to stop)"
    )


class ServiceError(CovalentCoreError):
    """The local dispatcher service could not be started or reached."""
