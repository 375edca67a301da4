"""Executor instances of the dispatcher: one per name and configuration, with its concurrency.

Executors are made through the ``covalent_instantiate`` hook the first time a task needs one
and reused for every task with the same configuration. The local executor also runs the
dispatcher's own steps that execute user code (building a sublattice's graph), so that the
service itself never unpickles user data.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..local.executor import LocalExecutor
from ..sdk.base import Batch, Executor, TaskContext, TaskOutcome

if TYPE_CHECKING:
    from ..plugins import PluginRegistry

DEFAULT_EXECUTOR = "local"
KEYS_KEPT = 10_000


Starter = Callable[[Batch | None], bool]


class Capacity:
    """How many tasks of one executor configuration run at once, and those waiting to start.

    A node ready to run is admitted (:meth:`admit`): ``start(batch)`` is called at once if a
    slot is free, else when one frees, in the order they came. Until then the node is an entry
    in a queue, with no coroutine and nothing held, so 100,000 ready nodes cost little and
    cancelling them is immediate; ``start`` returns False if the node no longer wants its slot
    (it was cancelled meanwhile). When more nodes wait than slots are free, and the executor
    runs packs (``pack_size``), a slot takes several of one group (dispatch) at once, as one
    :class:`~covalent_core.sdk.base.Batch`: a fair share of the queue per slot. A job a
    dead dispatcher had started is running on its resource whatever we do: it takes its slot
    at once (:meth:`take`), even beyond the limit.
    """

    def __init__(self, limit: int, pack_size: int = 1) -> None:
        self.limit = limit
        self.free = limit
        self.pack_size = pack_size
        self._waiting: collections.deque[tuple[Starter, object, bool]] = collections.deque()

    def admit(self, start: Starter, group: object = None, alone: bool = False) -> None:
        """Call ``start(batch)`` with a slot taken for it, now or when one is free; nodes of
        one ``group`` may share a slot as a batch, unless ``alone``."""
        self._waiting.append((start, group, alone))
        self._pump()

    def take(self) -> None:
        """Take a slot now, free or not (a job that is running already)."""
        self.free -= 1

    def release(self, batch: Batch | None = None) -> None:
        """Give back a slot (once every node of its ``batch`` has): the next nodes start."""
        if batch is not None:
            batch.holding -= 1
            if batch.holding > 0:
                return
        self.free += 1
        self._pump()

    def _pump(self) -> None:
        while self.free > 0 and self._waiting:
            deep = len(self._waiting) > self.free and self.pack_size > 1
            start, group, alone = self._waiting.popleft()
            if not deep or alone:
                self.free -= 1
                if not start(None):
                    self.free += 1
                continue
            share = -(-(len(self._waiting) + 1) // self.limit)  # ceiling
            members = [start]
            for entry in list(self._waiting):
                if len(members) >= min(self.pack_size, share):
                    break
                if entry[1] is group and group is not None and not entry[2]:
                    self._waiting.remove(entry)
                    members.append(entry[0])
            batch = Batch(len(members))
            self.free -= 1
            taken = sum(1 for member in members if member(batch))
            if taken == 0:
                self.free += 1
                continue
            # Those that no longer wanted to start leave it (they never hold the slot).
            for _ in range(len(members) - taken):
                batch.size -= 1
                batch.holding -= 1


class ExecutorCache:
    """Executors by (name, configuration), made on first use; bounds on concurrent tasks."""

    def __init__(self, registry: PluginRegistry) -> None:
        self.registry = registry
        self._executors: dict[str, Executor] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._capacities: dict[str, Capacity] = {}
        self._keys: dict[tuple[str | None, int], tuple[Any, str]] = {}

    def key(self, name: str | None, config: dict[str, Any] | None) -> str:
        """The identity of an executor configuration (kept per configuration object: the
        nodes of a dispatch share one, and this is asked for each node several times)."""
        cached = self._keys.get((name, id(config)))
        if cached is not None and cached[0] is config:
            return cached[1]
        key = f"{name or DEFAULT_EXECUTOR}:{json.dumps(config or {}, sort_keys=True)}"
        if config is not None:
            if len(self._keys) > KEYS_KEPT:
                self._keys.clear()
            self._keys[(name, id(config))] = (config, key)
        return key

    async def get(self, name: str | None, config: dict[str, Any] | None) -> Executor:
        """The executor for this name and configuration, instantiated on first use."""
        key = self.key(name, config)
        if key in self._executors:
            return self._executors[key]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._executors:
                cls = self.registry.executor_class(name or DEFAULT_EXECUTOR)
                self._executors[key] = await self.registry.hook.covalent_instantiate(
                    executor_class=cls, config=dict(config or {})
                )
        return self._executors[key]

    def cached(self, name: str | None, config: dict[str, Any] | None) -> Executor | None:
        """The executor for this name and configuration, if it was made already."""
        return self._executors.get(self.key(name, config))

    def capacity(self, name: str | None, config: dict[str, Any] | None) -> Capacity:
        """How many tasks of this executor configuration may run at once."""
        key = self.key(name, config)
        capacity = self._capacities.get(key)
        if capacity is None:
            cls = self.registry.executor_class(name or DEFAULT_EXECUTOR)
            options = config or {}
            capacity = self._capacities[key] = Capacity(
                max(1, cls.concurrency_for(options)), max(1, cls.pack_size(options))
            )
        return capacity

    async def run_internal(self, payload: bytes) -> TaskOutcome:
        """Run one of the dispatcher's own steps on a local worker, and return its outcome."""
        executor = await self.get(DEFAULT_EXECUTOR, LocalExecutor().config)
        internal = f"internal-{uuid.uuid4()}"
        ctx = TaskContext(dispatch_id=internal, node_id=0, name="internal", executor_name="local")
        ctx.payload = payload
        try:
            await executor.run(ctx)
            await executor.fetch(ctx)
        finally:
            await executor.cleanup(ctx)
        assert ctx.outcome is not None
        return ctx.outcome

    def interpreters(self) -> list[str]:
        """The interpreters the executors' local workers run (the service's own first)."""
        found = {sys.executable}
        for executor in self._executors.values():
            found.update(getattr(executor, "interpreters", ()))
        return [sys.executable, *sorted(found - {sys.executable})]

    async def close(self) -> None:
        """Close every executor."""
        for executor in self._executors.values():
            with contextlib.suppress(Exception):
                await executor.close()
        self._executors.clear()
