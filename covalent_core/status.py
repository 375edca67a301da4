"""Statuses of dispatches and nodes, the stages a task goes through, why a node was cancelled."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """Status of a dispatch or of one node; the names are Covalent's where they apply."""

    NEW_OBJECT = "NEW_OBJECT"
    """Created and waiting: its inputs are not ready, or it has not been picked up yet."""
    RUNNING = "RUNNING"
    """Its stages have started (executor instantiated, pickling, ..., fetching)."""
    CANCELLING = "CANCELLING"
    """A cancel was requested and the executor has not yet confirmed that the job stopped."""
    COMPLETED = "COMPLETED"
    """Finished and its output is stored."""
    FAILED = "FAILED"
    """Raised an exception, or its process or job died; the error says which."""
    CANCELLED = "CANCELLED"
    """Stopped or never started because of a cancel, a timeout or an upstream failure."""

    def __str__(self) -> str:
        return self.value

    def __bool__(self) -> bool:
        # As Covalent's statuses: a status is false only while the object is new.
        return self is not Status.NEW_OBJECT

    @property
    def is_terminal(self) -> bool:
        """True once the status can never change again."""
        return self in TERMINAL


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})

# Covalent's ``ct.status`` names: ``ct.status.COMPLETED`` is ``Status.COMPLETED``.
NEW_OBJECT = Status.NEW_OBJECT
RUNNING = Status.RUNNING
CANCELLING = Status.CANCELLING
COMPLETED = Status.COMPLETED
FAILED = Status.FAILED
CANCELLED = Status.CANCELLED
# Covalent's server passes through these; a covalent-core dispatch never does.
STARTING = "STARTING"
DISPATCHING = "DISPATCHING"
DISPATCHING_SUBLATTICE = "DISPATCHING"
PENDING_REUSE = "PENDING_REUSE"
PENDING_REPLACEMENT = "PENDING_REPLACEMENT"
POSTPROCESSING = "POSTPROCESSING"
PENDING_POSTPROCESSING = "PENDING_POSTPROCESSING"
POSTPROCESSING_FAILED = "POSTPROCESSING_FAILED"


def is_terminal(status: Status | str) -> bool:
    """Covalent's ``ct.status.is_terminal``: COMPLETED, FAILED or CANCELLED."""
    return str(status) in {s.value for s in TERMINAL}


class Stage(str, Enum):
    """The stages of one task, in the order they run; cleanup always runs last."""

    INSTANTIATE = "instantiate"
    PICKLE = "pickle"
    UPLOAD = "upload"
    PROVISION = "provision"
    RUN = "run"
    FETCH = "fetch"
    CLEANUP = "cleanup"

    def __str__(self) -> str:
        return self.value


STAGES_IN_ORDER = (
    Stage.INSTANTIATE,
    Stage.PICKLE,
    Stage.UPLOAD,
    Stage.PROVISION,
    Stage.RUN,
    Stage.FETCH,
)


class CancelReason(str, Enum):
    """Why a node ended CANCELLED."""

    USER = "user"
    """Named in a cancel request (or the whole dispatch was cancelled)."""
    UPSTREAM_CANCELLED = "upstream cancelled"
    """A node it depends on was cancelled, so it never ran."""
    UPSTREAM_FAILED = "upstream failed"
    """A node it depends on failed, so it never ran."""
    PARENT_SUBLATTICE_CANCELLED = "parent sublattice cancelled"
    """The sublattice node that contains it was cancelled."""
    PACKED_JOB_CANCELLED = "packed job cancelled"
    """It shared one job with a node that was cancelled, and the job was stopped."""
    TIMEOUT = "timeout"
    """It ran longer than its electron's ``timeout=``."""
    DEADLINE = "deadline"
    """Its dispatch's deadline passed before it ended (``ct.dispatch(wf, deadline=...)``)."""
    STORE_ERROR = "store error"
    """The store could not be written (a full disk): its dispatch was stopped."""
    DISPATCHER_LOST = "dispatcher lost"
    """The dispatcher running it died; its job was stopped when another took over."""

    def __str__(self) -> str:
        return self.value


def dispatch_outcome(node_statuses: list[Status]) -> Status:
    """Return the terminal status of a dispatch whose nodes have these statuses.

    FAILED if any node failed, else CANCELLED if any was cancelled, else COMPLETED.
    """
    if Status.FAILED in node_statuses:
        return Status.FAILED
    if Status.CANCELLED in node_statuses or Status.CANCELLING in node_statuses:
        return Status.CANCELLED
    return Status.COMPLETED
