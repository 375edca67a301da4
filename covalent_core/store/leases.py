"""Who runs which dispatch: the owner and lease of each top-level dispatch, read, claimed
and renewed against the store's own clock."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Row, and_, select, text, update

from .queries import MAX_DISPATCH_ID, TERMINAL_VALUES, chunks
from .schema import dispatches


def store_now(conn: Connection) -> float:
    """The store's clock (seconds since the epoch): the one clock that every host sharing a
    PostgreSQL store agrees on, so leases do not depend on the hosts' clocks."""
    if conn.dialect.name == "postgresql":
        return float(
            conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
        )
    return time.time()


def unfinished_top_level(conn: Connection) -> list[Row[Any]]:
    """Top-level dispatches that have not ended (and were started), with owner and lease."""
    return list(
        conn.execute(
            select(
                dispatches.c.dispatch_id, dispatches.c.owner, dispatches.c.lease_expires_at
            ).where(
                and_(
                    dispatches.c.parent_dispatch_id.is_(None),
                    dispatches.c.status.not_in(TERMINAL_VALUES),
                    dispatches.c.held.is_(False),  # registered, not started: nobody runs it
                )
            )
        )
    )


def root_owner(conn: Connection, dispatch_id: str) -> Row[Any] | None:
    """Status and owner of the top-level dispatch that ``dispatch_id`` belongs to."""
    if not isinstance(dispatch_id, str) or len(dispatch_id) > MAX_DISPATCH_ID:
        return None  # not one of ours: the caller's get_dispatch says what is wrong
    root = (
        select(dispatches.c.root_dispatch_id)
        .where(dispatches.c.dispatch_id == dispatch_id)
        .scalar_subquery()
    )
    return conn.execute(
        select(
            dispatches.c.dispatch_id,
            dispatches.c.status,
            dispatches.c.owner,
            dispatches.c.lease_expires_at,
            dispatches.c.held,
        ).where(dispatches.c.dispatch_id == root)
    ).first()


def claim_dispatch(
    conn: Connection, dispatch_id: str, owner: str, previous: str | None, lease: float
) -> bool:
    """Make ``owner`` the dispatch's owner for ``lease`` seconds if ``previous`` still is;
    True if it took. The row is taken with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL): of
    services claiming it at once, one gets it and the others move on without waiting."""
    current = dispatches.c.owner.is_(None) if previous is None else dispatches.c.owner == previous
    claimable = (
        select(dispatches.c.dispatch_id)
        .where(and_(dispatches.c.dispatch_id == dispatch_id, current))
        .with_for_update(skip_locked=True)
    )
    result = conn.execute(
        update(dispatches)
        .where(dispatches.c.dispatch_id.in_(claimable))
        .values(owner=owner, lease_expires_at=store_now(conn) + lease)
    )
    return result.rowcount == 1


def renew_leases(conn: Connection, owner: str, running: list[str], lease: float) -> list[str]:
    """Extend the leases of ``owner``'s unfinished top-level dispatches; return those of
    ``running`` that another service owns now (it took them over after their lease expired)."""
    conn.execute(
        update(dispatches)
        .where(
            and_(
                dispatches.c.owner == owner,
                dispatches.c.parent_dispatch_id.is_(None),
                dispatches.c.status.not_in(TERMINAL_VALUES),
            )
        )
        .values(lease_expires_at=store_now(conn) + lease)
    )
    lost: list[str] = []
    for chunk in chunks(running):
        lost.extend(
            conn.execute(
                select(dispatches.c.dispatch_id).where(
                    and_(
                        dispatches.c.dispatch_id.in_(chunk),
                        dispatches.c.owner.is_not(None),
                        dispatches.c.owner != owner,
                    )
                )
            ).scalars()
        )
    return lost
