"""Which dispatcher service runs which dispatch.

Each top-level dispatch has an owner: the service running it, as ``host:pid:start_time``,
and a lease: the owner holds it until ``lease_expires_at`` (the store's clock) and renews it
while it runs. A service claims unowned dispatches, those whose lease expired (their service
or their host died: services on several hosts may share a PostgreSQL store) and those whose
owner on this host is no longer alive (no need to wait for the lease); a claim is a
conditional update, so two services never run the same dispatch.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

import psutil

from .. import config
from ..sdk.processes import START_TIME_TOLERANCE, is_dead
from ..store import leases
from .events import event

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from ..store import Store
    from ..store.writes import WriteBuffer

# A service that has not renewed its leases for this fraction of one checks, in the same
# transaction, that it still holds them before it writes anything.
SAFE_FRACTION = 0.5


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


def owner_holds(row: Any, now: float) -> bool:
    """True if the dispatch ``row`` (owner, lease_expires_at) is held by a live service:
    its lease has not expired and, on this host, its process still runs."""
    if row.lease_expires_at is not None and row.lease_expires_at < now:
        return False
    return owner_alive(row.owner)


class Ownership:
    """Finds top-level dispatches nobody alive runs, and claims them for this service."""

    def __init__(self, store: Store, writes: WriteBuffer, running: Collection[str]) -> None:
        self.store = store
        self.writes = writes
        self.running = running
        """The top-level dispatches this service runs (the dispatcher's, kept up to date)."""
        self.owner = owner_id()
        self.lease = config.lease_seconds()
        self.held_until = time.monotonic() + self.lease * SAFE_FRACTION
        self.on_lost: Callable[[list[str]], None] = self._lost
        """Called (on the store's writer thread) with the dispatches another service took
        over; it must not return normally: this service's writes for them are refused."""
        writes.fence = self.fence

    def orphans(self) -> list[Any]:
        """Unfinished top-level dispatches that no live service holds (this one included)."""
        with self.store.read() as conn:
            now = leases.store_now(conn)
            rows = leases.unfinished_top_level(conn)
        return [
            row
            for row in rows
            if row.dispatch_id not in self.running
            and row.owner != self.owner
            and not owner_holds(row, now)
        ]

    async def claim(self, dispatch_id: str, previous: str | None) -> bool:
        """Take the dispatch over from ``previous`` (None: unowned); True if this service did."""
        claimed = bool(
            await self.writes.execute(
                lambda conn: leases.claim_dispatch(
                    conn, dispatch_id, self.owner, previous, self.lease
                )
            )
        )
        if claimed and previous is not None:
            event("takeover", dispatch=dispatch_id, previous=previous, owner=self.owner)
        return claimed

    async def renew(self) -> None:
        """Renew the leases of this service's dispatches (see :meth:`renew_in`)."""
        await self.writes.execute(self.renew_in)

    def renew_in(self, conn: Connection) -> None:
        """Renew this service's leases in the transaction of ``conn``; if another service has
        taken any of its dispatches over (this one was stopped or stalled past their lease),
        :attr:`on_lost` is called before anything of this transaction is committed."""
        started = time.monotonic()
        lost = leases.renew_leases(conn, self.owner, list(self.running), self.lease)
        if lost:
            self.on_lost(lost)
        self.held_until = started + self.lease * SAFE_FRACTION

    def fence(self, conn: Connection) -> None:
        """Before each write: unless leases were renewed lately, check that they still hold."""
        if self.running and time.monotonic() >= self.held_until:
            self.renew_in(conn)

    def _lost(self, lost: list[str]) -> None:
        raise RuntimeError(f"dispatches {', '.join(lost)} were taken over by another service")
