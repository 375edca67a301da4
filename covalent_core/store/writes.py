"""Batched, ordered writes from the dispatcher to the store (group commit).

Node updates are merged per node and flushed together in one transaction, a few milliseconds
after the first one arrives; callers that need durability (a job handle, a cancel) await
``flush()`` and return once their write has committed. When the store is full, nothing is
dropped: the batch is kept and retried every second until the store takes writes again, and
``on_full`` is told (the dispatcher stops its dispatches).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Update, and_, bindparam, update

from ..errors import StoreFullError
from . import Store
from . import queries as q
from .schema import nodes

logger = logging.getLogger(__name__)

FLUSH_DELAY = 0.005
FULL_RETRY = 1.0  # seconds between attempts while the store is full


@functools.lru_cache(maxsize=256)
def _node_update(columns: tuple[str, ...]) -> Update:
    """The statement updating these columns of one node (built once per set of columns)."""
    return (
        update(nodes)
        .where(
            and_(
                nodes.c.dispatch_id == bindparam("_d"),
                nodes.c.node_id == bindparam("_n"),
                # Terminal statuses are sticky, whatever arrives late.
                *(nodes.c.status != value for value in q.TERMINAL_VALUES),
            )
        )
        .values({c: bindparam(c) for c in columns})
    )


class WriteBuffer:
    """Collects writes and commits them in order on one writer thread."""

    def __init__(self, store: Store, on_full: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.on_full = on_full
        """Told the store's message when a write fails because the store is full."""
        self.full: str | None = None
        """While the store is full: its message (writes are kept and retried)."""
        self.fence: Callable[[Connection], None] | None = None
        """Run first in each write transaction (on the writer thread); raising refuses it."""
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._nodes: dict[tuple[str, int], dict[str, Any]] = {}
        self._bulk: list[tuple[str, list[int], dict[str, Any]]] = []
        self._ops: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]] = []
        self._scheduled: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Future[None] | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._urgent = False  # a caller awaits the next commit now (not ``soon``)
        self._durable = False  # a write queued since the last commit must reach the disk

    def update_node(self, dispatch_id: str, node_id: int, **values: Any) -> None:
        """Queue an update of one node; later values for the same column win."""
        self._nodes.setdefault((dispatch_id, node_id), {}).update(values)
        if self._scheduled is None and self._flushing is None:
            self._schedule()

    def update_nodes(self, dispatch_id: str, node_ids: list[int], **values: Any) -> None:
        """Queue the same update of many nodes (one statement per few hundred of them).

        Committed after the batch's per-node updates; terminal statuses stay sticky."""
        if node_ids:
            self._bulk.append((dispatch_id, node_ids, values))
            self._schedule()

    def execute(
        self, op: Callable[[Connection], Any], *, durable: bool = False
    ) -> asyncio.Future[Any]:
        """Queue ``op(conn)`` to run in the next flush's transaction; the future has its result.

        ``durable``: that transaction's commit reaches the disk (see
        :meth:`~covalent_core.store.Store.write`); without, it survives a crash of this
        process (what every write about local work needs)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._ops.append((op, future))
        self._durable = self._durable or durable
        self._urgent = True
        self._schedule(0)
        return future

    async def flush(self, *, soon: bool = False) -> None:
        """Return once everything queued so far has committed.

        ``soon``: no hurry; the commit is the next one anyway, at most ``FLUSH_DELAY`` away
        (a write someone awaits at once, a job handle say, often comes in the meantime and
        carries this one along: one commit instead of two).
        """
        if not self._nodes and not self._bulk and not self._ops and self._flushing is None:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._urgent = self._urgent or not soon
        self._schedule(FLUSH_DELAY if soon else 0)
        await waiter

    async def still_full(self) -> bool:
        """While the store is full, try the kept writes again now (rather than at the next
        retry); True if it is still full."""
        if self.full is None:
            return False
        if self._flushing is None and self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
            self._start_flush()
        if self._flushing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flushing)
        return self.full is not None

    def _schedule(self, delay: float = FLUSH_DELAY) -> None:
        loop = asyncio.get_running_loop()
        if self._flushing is not None:
            return  # the running flush reschedules itself when it ends
        if self._scheduled is not None:
            if delay > 0 or self.full is not None:
                return  # while the store is full, the retry timer sets the pace
            self._scheduled.cancel()
        self._scheduled = loop.call_later(delay, self._start_flush)

    def _start_flush(self) -> None:
        self._scheduled = None
        node_updates, self._nodes = self._nodes, {}
        bulk, self._bulk = self._bulk, []
        ops, self._ops = self._ops, []
        waiters, self._waiters = self._waiters, []
        durable, self._durable = self._durable, False
        self._urgent = False
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(
            self._pool, self._commit, node_updates, bulk, [op for op, _ in ops], durable
        )
        self._flushing = asyncio.ensure_future(fut)

        def done(f: asyncio.Future[list[Any]]) -> None:
            self._flushing = None
            exc = f.exception()
            if isinstance(exc, StoreFullError):
                self._durable = self._durable or durable
                self._keep_for_later(node_updates, bulk, ops, waiters, exc)
                return
            if self.full is not None:
                logger.warning("the store can be written again")
                self.full = None
            if exc is not None:
                logger.error("store write failed: %s", exc, exc_info=exc)
            results = [] if exc is not None else f.result()
            for i, (_, op_future) in enumerate(ops):
                if op_future.done():
                    continue
                if exc is not None:
                    op_future.set_exception(exc)
                else:
                    op_future.set_result(results[i])
            for waiter in waiters:
                if not waiter.done():
                    if exc is not None:
                        waiter.set_exception(exc)
                    else:
                        waiter.set_result(None)
            if self._nodes or self._bulk or self._ops or self._waiters:
                self._schedule(0 if self._urgent else FLUSH_DELAY)

        self._flushing.add_done_callback(done)

    def _keep_for_later(
        self,
        node_updates: dict[tuple[str, int], dict[str, Any]],
        bulk: list[tuple[str, list[int], dict[str, Any]]],
        ops: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]],
        waiters: list[asyncio.Future[None]],
        exc: StoreFullError,
    ) -> None:
        """A full store loses nothing: the batch goes back in front and is tried again."""
        for key, values in node_updates.items():
            newer = self._nodes.get(key, {})
            self._nodes[key] = {**values, **newer}
        self._bulk[:0] = bulk
        self._ops[:0] = ops
        self._waiters[:0] = waiters
        if self.full is None:
            logger.error("store write failed, kept to retry every %.0f s: %s", FULL_RETRY, exc)
        self.full = str(exc)
        if self.on_full is not None:
            self.on_full(self.full)
        self._scheduled = asyncio.get_running_loop().call_later(FULL_RETRY, self._start_flush)

    def _commit(
        self,
        node_updates: dict[tuple[str, int], dict[str, Any]],
        bulk: list[tuple[str, list[int], dict[str, Any]]],
        ops: list[Callable[[Connection], Any]],
        durable: bool = False,
    ) -> list[Any]:
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for (dispatch_id, node_id), values in node_updates.items():
            key = tuple(sorted(values))
            groups[key].append({"_d": dispatch_id, "_n": node_id, **values})
        results = []
        with self.store.write(durable=durable) as conn:
            if self.fence is not None:
                self.fence(conn)
            for columns, params in groups.items():
                conn.execute(_node_update(columns), params)
            for dispatch_id, node_ids, values in bulk:
                q.update_unfinished_nodes(conn, dispatch_id, node_ids, values)
            for op in ops:
                results.append(op(conn))
        return results

    def close(self) -> None:
        """Stop the writer thread once queued writes are done."""
        self._pool.shutdown(wait=True)
