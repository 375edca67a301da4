"""What users read back: a dispatch's result with every node, and the report of a cancel.

:class:`Result` reads the way Covalent's does (``get_node_result``, ``get_all_node_outputs``,
``result``, ``status``, ``inputs``, ``start_time``, ``lattice.transport_graph``, the status
constants) and keeps our richer view: ``nodes`` and ``get_node`` with each node's stage,
cancel reason, executor and job handle.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import status as status_names
from .._workflow.transportable_object import TransportableObject
from ..graph import KIND_PARAMETER, KIND_POSTPROCESS, Edge, TransportGraph
from ..status import CancelReason, Status
from ..values import read_text, read_value


def utc_datetime(ts: float | None) -> dt.datetime | None:
    """A stored time as Covalent returns it: a naive datetime in UTC."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).replace(tzinfo=None)


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
    stdout_stored: str | None = field(repr=False)
    """As stored: the text, or a reference to the file that holds a big one."""
    stderr_stored: str | None = field(repr=False)
    cancel_requested: bool
    cancel_reason: str | None
    cancel_stage: str | None
    sub_dispatch_id: str | None
    output_bytes: bytes | None = field(default=None, repr=False)
    output_repr: str | None = field(default=None, repr=False)
    executor_config: dict[str, Any] | None = field(default=None, repr=False)
    reattached_by: str | None = None
    """The dispatcher service (``host:pid:start``) that took the job over after one died."""
    reattached_at: float | None = None
    reused_from: str | None = None
    """A redispatch that reused this node's output: the dispatch that computed it."""
    dispatch_id: str | None = field(default=None, repr=False)
    note: str | None = None
    """What to know about how the node ran that is not an error (say, whose environment its
    task saw)."""

    def __repr__(self) -> str:
        return f"<NodeResult {self.node_id} {self.name}: {self.status}>"

    def _repr_html_(self) -> str:
        from ..notebook import node_html

        return node_html(self)

    @property
    def cancel_summary(self) -> str:
        """Why and where it was cancelled, worded one way everywhere: ``user (at run)``;
        empty unless it has a cancel reason."""
        if not self.cancel_reason:
            return ""
        where = f" (at {self.cancel_stage})" if self.cancel_stage else ""
        return f"{self.cancel_reason}{where}"

    @property
    def reused(self) -> bool:
        """True if the output was taken from an earlier dispatch, not computed by this one."""
        return self.reused_from is not None

    @property
    def encoded_output(self) -> TransportableObject | None:
        """The output as Covalent hands it over (a :class:`TransportableObject`), or None."""
        if self.output_bytes is None:
            return None
        if self.kind != KIND_PARAMETER and self.status is not Status.COMPLETED:
            return None
        # A big value lives in a file of its own: read when asked for, not before.
        return TransportableObject.from_pickle(read_value(self.output_bytes), self.output_repr)

    @property
    def stdout(self) -> str | None:
        """What the task printed (a big output is read from its file when asked for); while
        it runs on this machine, what it has printed so far."""
        if self.stdout_stored is None:
            return self.live_output("stdout")
        return read_text(self.stdout_stored)

    @property
    def stderr(self) -> str | None:
        """What the task wrote to stderr (read from its file when big); so far, while it runs
        on this machine."""
        if self.stderr_stored is None:
            return self.live_output("stderr")
        return read_text(self.stderr_stored)

    def live_output(self, stream: str) -> str | None:
        """What a running task has written so far to ``stream`` ("stdout" or "stderr"); None
        when there is nothing to read (see :func:`covalent_core.task_output.running_output`)."""
        from ..task_output import running_output  # it reads through the service

        return running_output(self, stream)

    @property
    def output(self) -> Any:
        """The node's output (unpickled on access), or None if it has none."""
        encoded = self.encoded_output
        return None if encoded is None else encoded.get_deserialized()

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
            stdout_stored=row.stdout,
            stderr_stored=row.stderr,
            cancel_requested=bool(row.cancel_requested),
            cancel_reason=row.cancel_reason,
            cancel_stage=row.cancel_stage,
            sub_dispatch_id=row.sub_dispatch_id,
            output_bytes=getattr(row, "output", None),
            output_repr=row.output_repr,
            executor_config=row.executor_config,
            reattached_by=getattr(row, "job_attached_by", None),
            reattached_at=getattr(row, "job_attached_at", None),
            reused_from=getattr(row, "reused_from", None),
            dispatch_id=getattr(row, "dispatch_id", None),
            note=getattr(row, "note", None),
        )


class ResultGraph(TransportGraph):
    """A dispatch's transport graph with what ran: Covalent's ``result.lattice.transport_graph``.

    ``get_node_value(node_id, key)`` answers Covalent's keys: ``name``, ``status``, ``output``,
    ``value``, ``error``, ``stdout``, ``stderr``, ``start_time``, ``end_time``,
    ``sub_dispatch_id``, ``sublattice_result``, ``metadata``.
    """

    def __init__(self, result: Result) -> None:
        super().__init__(edges=list(result.edges))
        self._result = result

    def get_node_value(self, node_id: int, key: str) -> Any:
        """One value of one node, by Covalent's key."""
        node = self._result.get_node(node_id)
        values: dict[str, Callable[[], Any]] = {
            "name": lambda: node.name,
            "status": lambda: node.status,
            "output": lambda: node.encoded_output,
            "value": lambda: node.encoded_output if node.kind == KIND_PARAMETER else None,
            "error": lambda: node.error,
            "stdout": lambda: node.stdout,
            "stderr": lambda: node.stderr,
            "start_time": lambda: utc_datetime(node.started_at),
            "end_time": lambda: utc_datetime(node.ended_at),
            "sub_dispatch_id": lambda: node.sub_dispatch_id,
            "sublattice_result": lambda: self._result._sublattice_result(node),
            "metadata": lambda: {"executor": node.executor, "executor_data": node.executor_config},
        }
        if key not in values:
            raise KeyError(
                f"node {node_id} has no value {key!r}; known keys: {', '.join(sorted(values))}"
            )
        return values[key]()

    @property
    def nodes(self) -> list[Any]:  # type: ignore[override]
        return self._result.nodes

    @nodes.setter
    def nodes(self, value: Any) -> None:  # the dataclass initialiser assigns it
        pass

    def get_internal_graph_copy(self) -> Any:
        """A copy of the networkx graph, as Covalent's method returns."""
        return self._graph.copy()


@dataclass
class Result:
    """A dispatch read from the store: readable from any process, at any time.

    Covalent's reading of it works: ``result.result``, ``result.status == Result.COMPLETED``,
    ``get_node_result(i)["output"].get_deserialized()``, ``result.lattice.transport_graph``.
    """

    NEW_OBJ = Status.NEW_OBJECT
    NEW_OBJECT = Status.NEW_OBJECT
    RUNNING = Status.RUNNING
    CANCELLING = Status.CANCELLING
    COMPLETED = Status.COMPLETED
    FAILED = Status.FAILED
    CANCELLED = Status.CANCELLED
    PENDING_REUSE = status_names.PENDING_REUSE
    POSTPROCESSING = status_names.POSTPROCESSING
    PENDING_POSTPROCESSING = status_names.PENDING_POSTPROCESSING
    POSTPROCESSING_FAILED = status_names.POSTPROCESSING_FAILED

    dispatch_id: str
    name: str
    status: Status
    created_at: float
    started_at: float | None
    ended_at: float | None
    error: str | None
    nodes: list[NodeResult]
    parent_dispatch_id: str | None = None
    root_dispatch_id: str = ""
    edges: list[Edge] = field(default_factory=list, repr=False)
    lattice_bytes: bytes | None = field(default=None, repr=False)
    inputs_bytes: bytes | None = field(default=None, repr=False)
    results_dir: str | None = None
    redispatched_from: str | None = None
    """A redispatch: the dispatch it was made from (``ct.redispatch``, a trigger)."""
    triggered_by: str | None = None
    """A run a trigger made: that trigger's id (``covalent-core triggers`` lists it)."""
    deadline_at: float | None = None
    """When the service cancels what is unfinished (``ct.dispatch(wf, deadline=...)``),
    seconds since the epoch."""
    # Reads another dispatch (a sublattice's); set by ct.get_result.
    _loader: Callable[[str], Result] | None = field(default=None, repr=False)
    _with_sublattices: bool = field(default=True, repr=False)
    _with_output: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        self.root_dispatch_id = self.root_dispatch_id or self.dispatch_id
        self._by_id = {n.node_id: n for n in self.nodes}

    def _repr_html_(self) -> str:
        from ..notebook import result_html

        return result_html(self)

    # -- our view ------------------------------------------------------------------------

    def get_node(self, node_id: int) -> NodeResult:
        """The node with this id."""
        try:
            return self._by_id[node_id]
        except KeyError:
            span = f"0-{len(self.nodes) - 1}" if self.nodes else "none"
            raise KeyError(
                f"dispatch {self.dispatch_id} has no node {node_id} (its nodes are {span})"
            ) from None

    @property
    def is_finished(self) -> bool:
        """True once the dispatch reached COMPLETED, FAILED or CANCELLED."""
        return self.status.is_terminal

    @property
    def tasks(self) -> list[NodeResult]:
        """The nodes that run code (electrons, collections, sublattices), not parameters."""
        return [n for n in self.nodes if n.kind != KIND_PARAMETER]

    @property
    def failed_nodes(self) -> list[NodeResult]:
        """Every FAILED node, in id order."""
        return [n for n in self.nodes if n.status is Status.FAILED]

    # -- Covalent's view -----------------------------------------------------------------

    @property
    def encoded_result(self) -> TransportableObject | None:
        """The lattice's return value as a :class:`TransportableObject` (once COMPLETED)."""
        if not self._with_output or self.status is not Status.COMPLETED:
            return None
        for node in reversed(self.nodes):
            if node.kind == KIND_POSTPROCESS:
                return node.encoded_output
        return None

    @property
    def result(self) -> Any:
        """What the lattice returned (None until the dispatch COMPLETED)."""
        encoded = self.encoded_result
        return None if encoded is None else encoded.get_deserialized()

    @property
    def start_time(self) -> dt.datetime | None:
        """When the dispatch started running (naive UTC, as in Covalent)."""
        return utc_datetime(self.started_at)

    @property
    def end_time(self) -> dt.datetime | None:
        """When the dispatch ended (naive UTC, as in Covalent)."""
        return utc_datetime(self.ended_at)

    @property
    def inputs(self) -> TransportableObject | None:
        """The dispatch's arguments: ``{"args": (...), "kwargs": {...}}`` when deserialized."""
        if self.inputs_bytes is None:
            return None
        return TransportableObject.from_pickle(read_value(self.inputs_bytes))

    @property
    def lattice(self) -> Any:
        """The dispatched lattice, with ``transport_graph`` holding what ran.

        Without the stored lattice (a sub-dispatch built elsewhere), a stand-in that has
        ``__name__``, ``transport_graph`` and ``inputs``.
        """
        if self.lattice_bytes is not None:
            lattice = TransportableObject.from_pickle(self.lattice_bytes).get_deserialized()
        else:
            lattice = types.SimpleNamespace(__name__=self.name, metadata={})
        lattice.transport_graph = ResultGraph(self)
        lattice.inputs = self.inputs
        return lattice

    def get_node_result(self, node_id: int) -> dict[str, Any]:
        """Covalent's record of one node: ids, name, times, status, output, error, streams."""
        node = self.get_node(node_id)
        return {
            "node_id": node.node_id,
            "node_name": node.name,
            "start_time": utc_datetime(node.started_at),
            "end_time": utc_datetime(node.ended_at),
            "status": node.status,
            "output": node.encoded_output,
            "error": node.error,
            "sublattice_result": self._sublattice_result(node),
            "stdout": node.stdout,
            "stderr": node.stderr,
        }

    def get_all_node_outputs(self) -> dict[str, TransportableObject | None]:
        """Every node's output, keyed ``"name(id)"`` as in Covalent."""
        return {f"{n.name}({n.node_id})": n.encoded_output for n in self.nodes}

    def get_all_node_results(self) -> list[dict[str, Any]]:
        """:meth:`get_node_result` of every node, in id order."""
        return [self.get_node_result(n.node_id) for n in self.nodes]

    def post_process(self) -> Any:
        """The lattice's return value (post-processing already ran as the result node)."""
        return self.result

    def _sublattice_result(self, node: NodeResult) -> Result | None:
        if not (self._with_sublattices and node.sub_dispatch_id and self._loader):
            return None
        return self._loader(node.sub_dispatch_id)

    # -- text -----------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<Result {self.dispatch_id} {self.name}: {self.status}, {len(self.nodes)} nodes>"

    def __str__(self) -> str:
        lines = [f"Dispatch {self.dispatch_id} ({self.name}): {self.status}"]
        if self.error:
            lines.append("  error: " + self.error.replace("\n", "\n    "))
        for node in self.tasks:
            why = ""
            if node.status is Status.CANCELLED:
                why = f": {node.cancel_summary}" if node.cancel_reason else ""
            elif node.status is Status.FAILED and node.error:
                why = f": {node.error.splitlines()[0]}"
            lines.append(f"  [{node.node_id}] {node.name}: {node.status}{why}")
            if node.note:
                lines.append(f"      note: {node.note}")
        if self.status is Status.COMPLETED and self._with_output:
            lines.append(f"  result: {self.result!r}")
        return "\n".join(lines)


def failure_summary(failed: list[tuple[int, str, str | None]]) -> str:
    """The dispatch's error for its failed nodes: each node's id, name and exception."""
    lines = ["The following tasks failed:"]
    for node_id, name, error in failed:
        first = (error or "").strip().splitlines()
        lines.append(f"{node_id}: {name}" + (f": {first[0]}" if first else ""))
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
    reason: str = CancelReason.USER.value
    """Why: a user's request, or the dispatch's deadline."""

    def _repr_html_(self) -> str:
        from ..notebook import cancel_report_html

        return cancel_report_html(self)

    @property
    def cancelled(self) -> list[int]:
        """Every node this request cancels: the named ones and everything downstream."""
        return sorted(set(self.requested) | set(self.downstream))

    @property
    def changed_anything(self) -> bool:
        """False if everything it addressed had already finished."""
        return bool(self.cancelled)

    @property
    def cancelled_whole(self) -> dict[str, str]:
        """The dispatches this request flagged as cancelled whole, with the reason: the
        dispatch itself (if it was addressed whole and had unfinished tasks) and every
        sub-dispatch below what it cancelled."""
        whole = dict.fromkeys(self.sub_dispatches, CancelReason.PARENT_SUBLATTICE_CANCELLED.value)
        if self.whole_dispatch and self.changed_anything:
            whole[self.dispatch_id] = self.reason
        return whole

    @property
    def flagged_nodes(self) -> dict[int, str]:
        """The nodes of the addressed dispatch this request flagged one by one, with the
        reason it gave them (none when it was addressed whole)."""
        if self.whole_dispatch:
            return {}
        flagged = dict.fromkeys(self.downstream, CancelReason.UPSTREAM_CANCELLED.value)
        flagged.update(dict.fromkeys(self.requested, self.reason))
        return flagged

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


@dataclass(frozen=True)
class DispatchSummary:
    """One dispatch as ``ct.list_dispatches`` lists it: what it is, how it stands, when."""

    dispatch_id: str
    name: str
    status: Status
    created_at: float
    """Seconds since the epoch, as every time here (``datetime.fromtimestamp`` reads it)."""
    started_at: float | None
    ended_at: float | None
    num_nodes: int
    """Nodes of its graph (parameters included)."""
    redispatched_from: str | None = None
    triggered_by: str | None = None

    @classmethod
    def of(cls, row: Any) -> DispatchSummary:
        """The summary of a store row (nothing else of the row is kept)."""
        return cls(
            dispatch_id=row.dispatch_id,
            name=row.name,
            status=Status(row.status),
            created_at=row.created_at,
            started_at=row.started_at,
            ended_at=row.ended_at,
            num_nodes=row.num_nodes or 0,
            redispatched_from=row.redispatched_from,
            triggered_by=row.triggered_by,
        )

    def __str__(self) -> str:
        created = dt.datetime.fromtimestamp(self.created_at).strftime("%Y-%m-%d %H:%M:%S")
        return f"{self.dispatch_id}  {self.name}  {self.status}  created {created}"


class DispatchList(list):  # type: ignore[type-arg]
    """Dispatches as ``ct.list_dispatches`` returns them (:class:`DispatchSummary`, newest
    first): a line each as text, a table in a notebook."""

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self) if self else "no dispatches"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython / notebooks
        p.text(str(self))

    def _repr_html_(self) -> str:
        from ..notebook import dispatches_html

        return dispatches_html(self)
