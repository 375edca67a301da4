"""Waiting on many jobs with one status call per interval, as schedulers and clouds prefer.

An executor's ``run`` awaits :meth:`BatchedPoller.wait` for its job; one loop per poller asks
about every waiting job at once (``squeue --jobs=a,b,c``, ``describe_jobs(jobs=[...])``),
in batches of at most ``batch`` ids.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)


class BatchedPoller:
    """Resolves each waiting job once ``ended(ids)`` reports it.

    ``ended(ids)`` returns ``{id: what the executor needs to know}`` for the jobs among
    ``ids`` that have ended (an unknown job counts as ended: map it to None); the others
    keep waiting. An exception in one poll is logged and the next poll tries again. A job
    nobody waits on any more (its waiters were cancelled) is no longer asked about.
    """

    def __init__(
        self,
        ended: Callable[[list[str]], Awaitable[dict[str, Any]]],
        interval: float,
        batch: int = 100,
    ) -> None:
        self.ended = ended
        self.interval = interval
        self.batch = batch
        self.waiting: dict[str, asyncio.Future[Any]] = {}
        self._waiters: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def wait(self, job_id: str) -> Any:
        """Return once the job has ended, with what ``ended`` said of it."""
        future = self.waiting.get(job_id)
        if future is None:
            future = self.waiting[job_id] = asyncio.get_running_loop().create_future()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop())
        self._waiters[job_id] += 1
        try:
            return await asyncio.shield(future)
        finally:
            self._waiters[job_id] -= 1
            if future.done() or self._waiters[job_id] <= 0:
                del self._waiters[job_id]
                if self.waiting.get(job_id) is future:
                    del self.waiting[job_id]

    async def _loop(self) -> None:
        while self.waiting:
            await asyncio.sleep(self.interval)
            ids = [j for j, f in self.waiting.items() if not f.done()]
            for start in range(0, len(ids), self.batch):
                chunk = ids[start : start + self.batch]
                try:
                    found = await self.ended(chunk)
                except Exception as exc:
                    logger.warning("polling %d job(s) failed: %s", len(chunk), exc)
                    continue
                for job_id, item in found.items():
                    future = self.waiting.get(job_id)
                    if future is not None and not future.done():
                        future.set_result(item)


_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, BatchedPoller]] = (
    weakref.WeakKeyDictionary()
)


def shared_poller(
    key: Any,
    ended: Callable[[list[str]], Awaitable[dict[str, Any]]],
    interval: float,
    batch: int = 100,
) -> BatchedPoller:
    """The one poller for ``key`` (a cluster, a region and endpoint) in the running loop."""
    pollers = _pollers.setdefault(asyncio.get_running_loop(), {})
    poller = pollers.get(key)
    if poller is None:
        poller = pollers[key] = BatchedPoller(ended, interval, batch)
    poller.interval = min(poller.interval, interval)
    return poller


async def wait_until_gone(
    gone: Callable[[], Awaitable[bool]], within: float, interval: float = 0.1
) -> bool:
    """Ask ``gone()`` until it answers True or ``within`` seconds pass; what it said last.

    The confirming step of a ``cancel``: after asking the resource to stop the job, return
    True only once the resource says it is gone.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if await gone():
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(interval)
