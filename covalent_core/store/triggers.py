"""Reads and writes of triggers, and of dispatches registered but not started (``held``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import cloudpickle
from sqlalchemy import Connection, Row, and_, insert, select, update

from ..status import TERMINAL, Status
from .schema import dispatches, nodes, triggers

TERMINAL_VALUES = [s.value for s in TERMINAL]

LISTED = [c for c in triggers.c if c.name != "trigger"]
"""Trigger columns without the pickled trigger."""


def insert_trigger(
    conn: Connection,
    *,
    trigger_id: str,
    dispatch_id: str,
    kind: str,
    description: str,
    trigger: bytes,
    host: str,
) -> None:
    """Store an armed trigger of ``dispatch_id``."""
    conn.execute(
        insert(triggers).values(
            trigger_id=trigger_id,
            dispatch_id=dispatch_id,
            kind=kind[:64],
            description=description,
            trigger=trigger,
            host=host[:255],
            armed=True,
            created_at=time.time(),
            fired=0,
        )
    )


def arm(conn: Connection, dispatch_id: str, armed: Sequence[Any], host: str) -> list[str]:
    """Store these trigger objects, armed, for ``dispatch_id`` on ``host``; their new ids
    (each object gets its own as ``trigger_id``)."""
    ids = []
    for trigger in armed:
        trigger.lattice_dispatch_id = dispatch_id
        trigger.trigger_id = str(uuid.uuid4())
        insert_trigger(
            conn,
            trigger_id=trigger.trigger_id,
            dispatch_id=dispatch_id,
            kind=type(trigger).__name__,
            description=trigger.describe(),
            trigger=cloudpickle.dumps(trigger),
            host=host,
        )
        ids.append(trigger.trigger_id)
    return ids


def armed_on(conn: Connection, host: str) -> list[Row[Any]]:
    """The armed triggers that ``host``'s service runs, with their pickles."""
    stmt = select(triggers).where(and_(triggers.c.armed.is_(True), triggers.c.host == host))
    return list(conn.execute(stmt))


def any_armed_on(conn: Connection, host: str) -> bool:
    """True if ``host``'s service has a trigger to run."""
    stmt = select(triggers.c.trigger_id).where(
        and_(triggers.c.armed.is_(True), triggers.c.host == host)
    )
    return conn.execute(stmt.limit(1)).first() is not None


def list_triggers(
    conn: Connection, *, dispatch_ids: Sequence[str] | None = None, armed_only: bool = False
) -> list[Row[Any]]:
    """Triggers (without their pickles), oldest first: all, or those of ``dispatch_ids``."""
    stmt = select(*LISTED).order_by(triggers.c.created_at)
    if dispatch_ids is not None:
        stmt = stmt.where(triggers.c.dispatch_id.in_(list(dispatch_ids)))
    if armed_only:
        stmt = stmt.where(triggers.c.armed.is_(True))
    return list(conn.execute(stmt))


def find_triggers(conn: Connection, trigger_ids: Sequence[str]) -> list[Row[Any]]:
    """The triggers of these ids (without their pickles)."""
    stmt = select(*LISTED).where(triggers.c.trigger_id.in_(list(trigger_ids)))
    return list(conn.execute(stmt))


def disarm(conn: Connection, trigger_ids: Sequence[str], error: str | None = None) -> list[str]:
    """Disarm the armed ones of ``trigger_ids`` (``error``: why, when not by request); their
    ids."""
    armed = [
        r.trigger_id
        for r in conn.execute(
            select(triggers.c.trigger_id).where(
                and_(triggers.c.trigger_id.in_(list(trigger_ids)), triggers.c.armed.is_(True))
            )
        )
    ]
    if armed:
        conn.execute(
            update(triggers)
            .where(triggers.c.trigger_id.in_(armed))
            .values(armed=False, stopped_at=time.time(), error=error)
        )
    return armed


def record_fire(conn: Connection, trigger_id: str) -> None:
    """Count one firing of the trigger."""
    conn.execute(
        update(triggers)
        .where(triggers.c.trigger_id == trigger_id)
        .values(fired=triggers.c.fired + 1, last_fired_at=time.time())
    )


def start_held(conn: Connection, dispatch_id: str) -> bool:
    """Start a dispatch that was registered, not started; False if it was not held (it was
    started before, or it ended: a cancel ends a held dispatch at once)."""
    result = conn.execute(
        update(dispatches)
        .where(and_(dispatches.c.dispatch_id == dispatch_id, dispatches.c.held.is_(True)))
        .values(held=False)
    )
    return bool(result.rowcount)


def end_held(conn: Connection, dispatch_id: str, status: Status, reason: str) -> bool:
    """End a held dispatch that never started, and its nodes (a cancel); False if it was
    not held."""
    now = time.time()
    result = conn.execute(
        update(dispatches)
        .where(and_(dispatches.c.dispatch_id == dispatch_id, dispatches.c.held.is_(True)))
        .values(
            held=False,
            status=status.value,
            cancel_requested=True,
            cancel_reason=reason,
            ended_at=now,
        )
    )
    if not result.rowcount:
        return False
    conn.execute(
        update(nodes)
        .where(and_(nodes.c.dispatch_id == dispatch_id, nodes.c.status.not_in(TERMINAL_VALUES)))
        .values(status=status.value, cancel_requested=True, cancel_reason=reason)
    )
    return True
