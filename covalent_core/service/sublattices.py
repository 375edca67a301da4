"""Sublattice nodes: their graph is built in a worker from their inputs, then run as a dispatch.

The sub-dispatch is stored with its parent and root, so that it can be addressed by its own
id, read like any dispatch, and resumed by a dispatcher that takes over.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..errors import CovalentCoreError
from ..plain_pickle import loads_plain
from ..serialize import BUILD_SUBLATTICE, GraphRecords, task_payload
from ..status import Status
from ..store import queries as q

if TYPE_CHECKING:
    from ..store.writes import WriteBuffer
    from .executor_cache import ExecutorCache
    from .recorder import NodeState
    from .scheduling import LiveDispatch

Loader = Callable[[str, "tuple[LiveDispatch, int]"], Awaitable["LiveDispatch"]]


class Sublattices:
    """Builds, stores and loads the sub-dispatches of sublattice nodes: built by
    ``executors``' internal worker, stored through ``writes`` as owned by ``owner``, loaded
    with ``load(dispatch_id, parent)``."""

    def __init__(
        self, executors: ExecutorCache, writes: WriteBuffer, owner: str, load: Loader
    ) -> None:
        self.executors = executors
        self.writes = writes
        self.owner = owner
        self.load = load

    async def build(
        self, run: LiveDispatch, node: NodeState, args: list[bytes], kwargs: dict[str, bytes]
    ) -> GraphRecords:
        """Build a sublattice's graph from its inputs, in a worker (user code runs there)."""
        outcome = await self.executors.run_internal(
            task_payload(BUILD_SUBLATTICE, args, kwargs, run.environment)
        )
        if not outcome.ok or outcome.output is None:
            raise CovalentCoreError(
                f"building sublattice {node.name!r} failed: {outcome.error}\n"
                f"{outcome.traceback or ''}"
            )
        # Our own records of the graph, rows of plain values: read without running anything.
        return GraphRecords(**loads_plain(outcome.output))

    async def create(
        self, run: LiveDispatch, node: NodeState, records: GraphRecords
    ) -> LiveDispatch:
        """Store a sublattice's graph as a dispatch of its own and load it."""
        sub_id = str(uuid.uuid4())

        def insert(conn: Any) -> None:
            q.insert_dispatch(
                conn,
                dispatch_id=sub_id,
                name=node.name.removeprefix(":sublattice:"),
                node_rows=records.nodes,
                edge_rows=records.edges,
                environment={k: v for k, v in run.environment.items() if k != "variables"},
                lattice=records.lattice,
                inputs=records.inputs,
                parent_dispatch_id=run.dispatch_id,
                parent_node_id=node.node_id,
                root_dispatch_id=run.root.dispatch_id,
                owner=self.owner,
                status=Status.RUNNING,
            )
            q.set_sub_dispatch(conn, run.dispatch_id, node.node_id, sub_id)

        await self.writes.execute(insert)
        node.sub_dispatch_id = sub_id
        return await self.load(sub_id, (run, node.node_id))

    async def resume(self, run: LiveDispatch, node: NodeState) -> LiveDispatch:
        """Load the sub-dispatch a previous dispatcher had started."""
        assert node.sub_dispatch_id is not None
        return await self.load(node.sub_dispatch_id, (run, node.node_id))
