"""Which dispatcher service runs which dispatch.

Each top-level dispatch has an owner: the service running it, as ``host:pid:start_time``.
A service claims unowned dispatches and those whose owner on this host is no longer alive;
a claim is a conditional update, so two services never run the same dispatch.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import psutil

from ..executors.processes import START_TIME_TOLERANCE, is_dead
from ..store import queries as q

if TYPE_CHECKING:
    from ..store import Store
    from ..store.writes import WriteBuffer


def owner_id() -> str:
    """This process as a dispatcher owner: host, PID and start time."""
    proc = psutil.Process()
    return f"{socket.gethostname()}:{proc.pid}:{proc.create_time():.3f}"


def owner_alive(owner: str | None) -> bool:
    """True unless ``owner`` is a dispatcher on this host that is no longer running."""
    if not owner:
        return False
    try:
        host, pid, started = owner.rsplit(":", 2)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True  # another host's dispatcher: it answers for its own dispatches
    # A killed dispatcher stays a zombie until its parent reaps it: that is dead too.
    if is_dead(int(pid)):
        return False
    try:
        started_at = psutil.Process(int(pid)).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    return abs(started_at - float(started)) < START_TIME_TOLERANCE + 0.01


class Ownership:
    """Finds top-level dispatches nobody alive runs, and claims them for this service."""

    def __init__(self, store: Store, writes: WriteBuffer) -> None:
        self.store = store
        self.writes = writes
        self.owner = owner_id()

    def orphans(self, running: set[str]) -> list[Any]:
        """Unfinished top-level dispatches not in ``running`` whose owner is gone or none."""
        with self.store.read() as conn:
            rows = q.unfinished_top_level(conn)
        return [
            row
            for row in rows
            if row.dispatch_id not in running
            and row.owner != self.owner
            and not owner_alive(row.owner)
        ]

    async def claim(self, dispatch_id: str, previous: str | None) -> bool:
        """Take the dispatch over from ``previous`` (None: unowned); True if this service did."""
        return bool(
            await self.writes.execute(
                lambda conn: q.claim_dispatch(conn, dispatch_id, self.owner, previous)
            )
        )
