"""The dispatcher: runs the dispatches it owns, from the store, and applies their cancels.

It wires the parts together: :mod:`.ownership` (which dispatches are ours), :mod:`.recorder`
(every status change), :mod:`.scheduling` (readiness and completion of one dispatch),
:mod:`.stages` (one node's stages), :mod:`.jobs` (job handles), :mod:`.cancel` (every cancel),
:mod:`.sublattices`. One dispatcher runs in each service process; when one dies, the next
takes its dispatches over (:mod:`.ownership`) and resumes their nodes where they were
(:meth:`.stages.NodeStages.drive_node`): jobs are re-attached to, never run twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from .. import host_environment, plugins
from .._results_manager.result import failure_summary
from ..graph import Edge
from ..sdk.output import OUTPUT_TIMEOUT
from ..status import TERMINAL, CancelReason, Status, dispatch_outcome
from ..store import Store, triggers
from ..store import queries as q
from ..store.writes import WriteBuffer
from .cancel import Cancels
from .events import event
from .executor_cache import ExecutorCache
from .jobs import JobRegistry
from .ownership import Ownership
from .recorder import CancelPhase, NodeState, StateRecorder
from .scheduling import LiveDispatch
from .stages import NodeStages
from .sublattices import Sublattices

logger = logging.getLogger(__name__)


class Dispatcher:
    """Runs dispatches claimed from the store; one per service process."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.registry = plugins.registry()
        self.writes = WriteBuffer(store, on_full=self.store_full)
        self.store_errors: dict[str, str] = {}
        """Dispatches stopped because the store could not be written, and why."""
        self.states = StateRecorder(self.writes)
        self.top_level: dict[str, asyncio.Task[None]] = {}
        self.ownership = Ownership(store, self.writes, self.top_level)
        self.executors = ExecutorCache(self.registry)
        self.jobs = JobRegistry(self.writes, self.executors, self.owner)
        self.runs: dict[str, LiveDispatch] = {}
        self.cancels = Cancels(
            store, self.writes, self.states, self.jobs, self.registry.hook, self.runs
        )
        self.sublattices = Sublattices(self.executors, self.writes, self.owner, self.load)
        self.stages = NodeStages(
            self.registry.hook,
            self.executors,
            self.jobs,
            self.cancels,
            self.sublattices,
            drive_sub=self.drive_dispatch,
        )
        self.end_waiters: dict[str, list[asyncio.Future[str]]] = {}
        """Clients waiting for a dispatch to end: told its status once it is stored."""
        self.full_waiters: list[asyncio.Future[str]] = []
        """Clients waiting for anything: told at once when the store becomes full."""
        self.keeps_variables: Callable[[str], bool] = lambda dispatch_id: False
        """True for a dispatch whose variables stay kept after it ends (its triggers, armed,
        rerun it with them)."""

    @property
    def owner(self) -> str:
        """This dispatcher as the owner of dispatches (host, PID, start time)."""
        return self.ownership.owner

    @property
    def busy(self) -> bool:
        """True while any dispatch runs or any cancel is still being retried."""
        return bool(self.top_level) or self.jobs.cancelling

    async def close(self) -> None:
        """Close every executor and flush pending writes."""
        await self.executors.close()
        await self.writes.flush()

    # -- starting and loading dispatches ------------------------------------------------

    async def poll_new(self) -> None:
        """Claim and start top-level dispatches nobody (alive) is running."""
        rows = await asyncio.to_thread(self.ownership.orphans)
        for row in rows:
            if row.dispatch_id in self.top_level:
                continue
            if await self.ownership.claim(row.dispatch_id, row.owner):
                self.top_level[row.dispatch_id] = asyncio.create_task(
                    self._run_top_level(row.dispatch_id), name=f"dispatch-{row.dispatch_id}"
                )

    async def _run_top_level(self, dispatch_id: str) -> None:
        deadline: asyncio.Task[None] | None = None
        try:
            run = await self.load(dispatch_id, parent=None)
            event("dispatch_received", dispatch=dispatch_id, name=run.name, nodes=len(run.nodes))
            if run.deadline_at is not None:
                deadline = asyncio.create_task(self._at_deadline(dispatch_id, run.deadline_at))
            status, error, _ = await self.drive_dispatch(run)
            event("dispatch_ended", dispatch=dispatch_id, status=status, error=error)
        except Exception as exc:
            logger.exception("dispatch %s could not run", dispatch_id)
            await self.states.fail_dispatch(
                dispatch_id, f"the dispatcher could not run it: {exc!r}"
            )
        finally:
            if deadline is not None:
                deadline.cancel()
            self.top_level.pop(dispatch_id, None)
        if not self.keeps_variables(dispatch_id):
            host_environment.discard(dispatch_id)  # it ended: its variables are not kept

    async def _at_deadline(self, dispatch_id: str, at: float) -> None:
        """Once ``at`` passes (a restarted service: at once if it has), cancel what is left of
        the dispatch, stored as a cancel with the reason ``deadline``."""
        await asyncio.sleep(max(0.0, at - time.time()))
        event("deadline_passed", dispatch=dispatch_id)
        try:
            await self.cancels.request(
                dispatch_id, None, self.poll_new, reason=CancelReason.DEADLINE.value
            )
        except Exception:
            logger.exception("the deadline of dispatch %s could not be applied", dispatch_id)

    async def load(self, dispatch_id: str, parent: tuple[LiveDispatch, int] | None) -> LiveDispatch:
        """Read a dispatch from the store into a :class:`LiveDispatch`.

        Nodes a dead dispatcher had started keep their status; the run resumes them.
        """

        def read() -> tuple[Any, dict[int, NodeState]]:
            # Row by row: a graph of 100,000 nodes is never held as rows and states at once.
            # Equal functions and configurations are kept once, not once per node.
            same: dict[Any, Any] = {}
            states: dict[int, NodeState] = {}
            with self.store.read() as conn:
                row = q.get_dispatch(conn, dispatch_id)
                for r in q.iter_nodes_to_run(conn, dispatch_id):
                    config = r.executor_config
                    if config is not None:
                        config = same.setdefault(json.dumps(config, sort_keys=True), config)
                    states[r.node_id] = NodeState(
                        node_id=r.node_id,
                        name=sys.intern(r.name),
                        kind=sys.intern(r.kind),
                        status=Status(r.status),
                        executor=r.executor,
                        executor_config=config,
                        timeout=r.timeout,
                        function=same.setdefault(r.function, r.function),
                        hooks=same.setdefault(r.hooks, r.hooks),
                        output=r.output,
                        cancel_reason=r.cancel_reason,
                        sub_dispatch_id=r.sub_dispatch_id,
                        job_id=r.job_id,
                        stage=r.stage,
                        error=r.error,
                        job_handle=r.job_handle,
                        started_at=r.started_at,
                        phase=CancelPhase.REQUESTED if r.cancel_requested else CancelPhase.NONE,
                    )
                for e in q.iter_edges(conn, dispatch_id):
                    edge = Edge(*e)  # the row holds Edge's fields in its order
                    states[edge.child].inputs.append(edge)
                    states[edge.parent].children.append(edge.child)
            return row, states

        row, states = await asyncio.to_thread(read)
        environment, note = self._environment(dispatch_id, row.environment, parent)
        run = LiveDispatch(
            dispatch_id,
            row.name,
            environment,
            states,
            states=self.states,
            cancels=self.cancels,
            launch=self.stages.drive_node,
            capacity_of=self.stages.capacity_of,
            parent=parent,
        )
        run.status = Status(row.status)
        run.environment_note = note
        run.deadline_at = row.deadline_at
        if row.cancel_requested:
            run.cancel_all_reason = row.cancel_reason or CancelReason.USER.value
        self.runs[dispatch_id] = run
        return run

    @staticmethod
    def _environment(
        dispatch_id: str, stored: dict[str, Any] | None, parent: tuple[LiveDispatch, int] | None
    ) -> tuple[dict[str, Any], str | None]:
        """What the dispatch's local tasks see, and the note their nodes get when that is not
        the dispatching process's environment: the stored working directory and import path,
        with the variables this host keeps for it (:mod:`~covalent_core.host_environment`;
        a sublattice's are its parent's)."""
        if parent is not None:
            return parent[0].environment, parent[0].environment_note
        environment = dict(stored or {})
        variables = host_environment.load(dispatch_id)
        if variables is not None:
            environment["variables"] = variables
            return environment, None
        return environment, host_environment.note_for(stored)

    def sweep_environments(self) -> None:
        """Remove the variables kept for dispatches of this store that have ended (on another
        host, say), or were never stored (a client died while storing one; only once that is
        an hour old: a client may be storing it right now)."""
        kept = host_environment.kept(older_than=0.0)
        if not kept:
            return
        with self.store.read() as conn:
            statuses = q.statuses_of(conn, kept)
            armed = {
                r.dispatch_id
                for r in triggers.list_triggers(conn, dispatch_ids=kept, armed_only=True)
            }
        stale = set(host_environment.kept(older_than=3600.0))
        host_environment.discard_all(
            i for i in kept if i not in armed and ((i in statuses and statuses[i] in TERMINAL)
                                                   or (i not in statuses and i in stale))
        )  # fmt: skip

    async def drive_dispatch(self, run: LiveDispatch) -> tuple[Status, str | None, bytes | None]:
        """Run a dispatch to its end and record how it ended; returns (status, error, result)."""
        await self.states.dispatch(run, Status.RUNNING)
        try:
            run.start()
            # A cancel stored after the dispatch was read, but before it could be applied to
            # the run (it was not running yet), is applied now.
            await self.apply_cancels([run.dispatch_id])
            await run.finished
            status = dispatch_outcome([n.status for n in run.nodes.values()])
            error: str | None = None
            result: bytes | None = None
            if run.dispatch_id in self.store_errors:
                status = Status.FAILED
                error = (
                    f"stopped because {self.store_errors.pop(run.dispatch_id)} Tasks that "
                    "had completed keep their results; the others were cancelled (reason: "
                    f"{CancelReason.STORE_ERROR.value})."
                )
            elif status is Status.FAILED:
                failed = run.failed_nodes()
                error = failure_summary([(n.node_id, n.name, n.error) for n in failed])
            elif status is Status.COMPLETED:
                result = run.result()
        finally:
            self.runs.pop(run.dispatch_id, None)
        await self.states.dispatch(run, status, error=error)
        await self.writes.flush()
        for future in self.end_waiters.pop(run.dispatch_id, []):
            if not future.done():
                future.set_result(status.value)
        return status, error, result

    # -- clients waiting ------------------------------------------------------------------

    async def dispatch_ended(self, dispatch_id: str) -> str | None:
        """The dispatch's final status once it is stored; None if this service does not run it
        (the client then reads the store from time to time)."""
        if dispatch_id not in self.runs and dispatch_id not in self.top_level:
            await self.poll_new()  # an orphan, or one dispatched a moment ago: ours now
        if dispatch_id in self.runs or dispatch_id in self.top_level:
            future = asyncio.get_running_loop().create_future()
            self.end_waiters.setdefault(dispatch_id, []).append(future)
            return await future

        def stored() -> str | None:
            with self.store.read() as conn:
                status = Status(q.get_dispatch(conn, dispatch_id).status)
            return status.value if status in TERMINAL else None

        return await asyncio.to_thread(stored)

    async def nodes_ended(self, dispatch_id: str, node_ids: set[int]) -> bool:
        """Return True once each of ``node_ids`` has a terminal status in the store; False if
        this service does not run the dispatch."""
        run = self.runs.get(dispatch_id)
        if run is None:
            return False
        await run.nodes_ended(node_ids)
        await self.writes.flush()
        return True

    async def read_output(self, dispatch_id: str, node_id: int, stream: str) -> str | None:
        """What the node's running job has written so far to ``stream``, read by its
        executor (``covalent_read_output``); None if it has no running job or the executor
        cannot tell in ``OUTPUT_TIMEOUT`` seconds."""

        def stored() -> Any:
            with self.store.read() as conn:
                return q.node_job(conn, dispatch_id, node_id)

        row = await asyncio.to_thread(stored)
        if row is None or Status(row.status) in TERMINAL:
            return None
        try:
            executor = await self.executors.get(row.executor, dict(row.executor_config or {}))
            return await asyncio.wait_for(
                self.registry.hook.covalent_read_output(
                    executor=executor,
                    task_metadata={"dispatch_id": dispatch_id, "node_id": node_id},
                    job_handle=row.handle,
                    stream=stream,
                ),
                OUTPUT_TIMEOUT,
            )
        except Exception as exc:  # unreachable, slow: the reader sees nothing new this time
            logger.info("reading %s of %s node %s: %s", stream, dispatch_id, node_id, exc)
            return None

    # -- cancels and timeouts -----------------------------------------------------------

    @property
    def store_place(self) -> str:
        """Where the store is, as a user names it: its file, or its URL without password."""
        return str(self.store.sqlite_path or self.store.safe_url)

    def when_store_full(self) -> asyncio.Future[str]:
        """A future resolved with :attr:`store_place` once the store cannot be written (at
        once if it cannot now)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if self.writes.full is not None:
            future.set_result(self.store_place)
        else:
            self.full_waiters.append(future)
        return future

    def store_full(self, message: str) -> None:
        """The store is full: stop every running dispatch (each needs to write, and no job may
        run on unrecorded), and end each FAILED with the store's message once writes go through."""
        waiters, self.full_waiters = self.full_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(self.store_place)
        message = message.split(" Nothing of this change was stored")[0]  # the cause only
        for run in list(self.runs.values()):
            if run.dispatch_id not in self.store_errors:
                self.store_errors[run.dispatch_id] = message
                self.cancels.cancel_all(run, CancelReason.STORE_ERROR.value)

    async def apply_cancels(self, dispatch_ids: list[str] | None = None) -> int:
        """Apply the cancels stored for these dispatches (None: all this service runs), first
        taking over any that no live service runs (one dispatched a moment ago, say)."""
        if dispatch_ids and any(i not in self.runs for i in dispatch_ids):
            await self.poll_new()
        return await self.cancels.apply_stored(dispatch_ids)
