"""What users read back: a dispatch's result with every node, and the report of a cancel."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from .errors import SerializationError
from .status import Status


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]


def _load(data: bytes | None, what: str) -> Any:
    if data is None:
        return None
    try:
        return cloudpickle.loads(data)
    except Exception as exc:
        raise SerializationError(
            f"{what} could not be unpickled here ({type(exc).__name__}: {exc}); "
            "import the modules it needs, or read it where the workflow was defined"
        ) from exc


@dataclass
class NodeResult:
    """One node of a dispatch as stored: status, stage reached, output or error, and times."""

    node_id: int
    name: str
    kind: str
    status: Status
    stage: str | None
    executor: str | None
    job_handle: dict[str, Any] | str | None
    started_at: float | None
    ended_at: float | None
    error: str | None
    traceback: str | None
    stdout: str | None
    stderr: str | None
    cancel_requested: bool
    cancel_reason: str | None
    cancel_stage: str | None
    sub_dispatch_id: str | None
    output_bytes: bytes | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"<NodeResult {self.node_id} {self.name}: {self.status}>"

    @property
    def output(self) -> Any:
        """The node's output (unpickled on access), or None if it has none."""
        return _load(self.output_bytes, f"the output of node {self.node_id} ({self.name})")

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, once both are known."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    @classmethod
    def from_row(cls, row: Any) -> NodeResult:
        """Build from a ``nodes`` row joined with its job's handle."""
        handle: Any = row.job_handle
        if handle:
            with contextlib.suppress(ValueError):
                handle = json.loads(handle)
        return cls(
            node_id=row.node_id,
            name=row.name,
            kind=row.kind,
            status=Status(row.status),
            stage=row.stage,
            executor=row.executor,
            job_handle=handle,
            started_at=row.started_at,
            ended_at=row.ended_at,
            error=row.error,
            traceback=row.traceback,
            stdout=row.stdout,
            stderr=row.stderr,
            cancel_requested=bool(row.cancel_requested),
            cancel_reason=row.cancel_reason,
            cancel_stage=row.cancel_stage,
            sub_dispatch_id=row.sub_dispatch_id,
            output_bytes=getattr(row, "output", None),
        )


@dataclass
class Result:
    """A dispatch read from the store: readable from any process, at any time."""

    dispatch_id: str
    name: str
    status: Status
    created_at: float
    started_at: float | None
    ended_at: float | None
    error: str | None
    nodes: list[NodeResult]
    parent_dispatch_id: str | None = None
    result_bytes: bytes | None = field(default=None, repr=False)

    @property
    def result(self) -> Any:
        """What the lattice returned (None until the dispatch COMPLETED)."""
        return _load(self.result_bytes, f"the result of dispatch {self.dispatch_id}")

    def get_node(self, node_id: int) -> NodeResult:
        """The node with this id."""
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KeyError(f"dispatch {self.dispatch_id} has no node {node_id}")

    def get_node_result(self, node_id: int) -> Any:
        """The output of a node (Covalent's name for it)."""
        return self.get_node(node_id).output

    @property
    def is_finished(self) -> bool:
        """True once the dispatch reached COMPLETED, FAILED or CANCELLED."""
        return self.status.is_terminal

    @property
    def tasks(self) -> list[NodeResult]:
        """The nodes that run code (electrons, collections, sublattices), not parameters."""
        return [n for n in self.nodes if n.kind != "parameter"]

    def __repr__(self) -> str:
        return f"<Result {self.dispatch_id} {self.name}: {self.status}, {len(self.nodes)} nodes>"

    def __str__(self) -> str:
        lines = [
            f"Dispatch {self.dispatch_id} ({self.name}): {self.status}",
        ]
        if self.error:
            lines.append(f"  error: {self.error}")
        for node in self.tasks:
            why = (
                f" ({node.cancel_reason}, at {node.cancel_stage or 'start'})"
                if node.status is Status.CANCELLED
                else ""
            )
            lines.append(f"  [{node.node_id}] {node.name}: {node.status}{why}")
        if self.status is Status.COMPLETED:
            lines.append(f"  result: {self.result!r}")
        return "\n".join(lines)


@dataclass
class CancelReport:
    """What a cancel request did: what it cancelled, what was already finished."""

    dispatch_id: str
    requested: list[int]
    downstream: list[int]
    already_finished: dict[int, Status]
    sub_dispatches: list[str]
    whole_dispatch: bool
    dispatch_status: Status
    names: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def cancelled(self) -> list[int]:
        """Every node this request cancels: the named ones and everything downstream."""
        return sorted(set(self.requested) | set(self.downstream))

    @property
    def changed_anything(self) -> bool:
        """False if everything it addressed had already finished."""
        return bool(self.cancelled)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "dispatch_id": self.dispatch_id,
            "requested": self.requested,
            "downstream": self.downstream,
            "already_finished": {str(k): v.value for k, v in self.already_finished.items()},
            "sub_dispatches": self.sub_dispatches,
            "whole_dispatch": self.whole_dispatch,
            "dispatch_status": self.dispatch_status.value,
            "names": {str(k): v for k, v in self.names.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CancelReport:
        """Rebuild a report from :meth:`to_json` data."""
        return cls(
            dispatch_id=data["dispatch_id"],
            requested=list(data["requested"]),
            downstream=list(data["downstream"]),
            already_finished={int(k): Status(v) for k, v in data["already_finished"].items()},
            sub_dispatches=list(data["sub_dispatches"]),
            whole_dispatch=bool(data["whole_dispatch"]),
            dispatch_status=Status(data["dispatch_status"]),
            names={int(k): v for k, v in data["names"].items()},
        )

    def _fmt(self, ids: list[int]) -> str:
        return ", ".join(f"{i} ({self.names.get(i, '?')})" for i in ids) or "none"

    def __str__(self) -> str:
        scope = "the whole dispatch" if self.whole_dispatch else "the named tasks"
        if not self.changed_anything:
            head = f"Nothing to cancel in dispatch {self.dispatch_id}: {scope} had already finished"
            if self.whole_dispatch:
                head += f" ({self.dispatch_status})"
            lines = [head + "."]
        else:
            lines = [f"Cancelling {scope} of dispatch {self.dispatch_id}:"]
            lines.append(f"  requested: {self._fmt(self.requested)}")
            if self.downstream:
                lines.append(f"  downstream, will not run: {self._fmt(self.downstream)}")
        if self.already_finished:
            done = ", ".join(
                f"{i} ({self.names.get(i, '?')}: {s})"
                for i, s in sorted(self.already_finished.items())
            )
            lines.append(f"  already finished, kept: {done}")
        if self.sub_dispatches:
            lines.append(f"  sublattice dispatches: {', '.join(self.sub_dispatches)}")
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython / notebooks
        p.text(str(self))
