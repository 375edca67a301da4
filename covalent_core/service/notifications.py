"""Wake-ups between hosts that share a PostgreSQL store: ``LISTEN``/``NOTIFY``.

A cancel stored on any host is announced on :data:`~covalent_core.store.queries.CANCEL_CHANNEL`
in the transaction that stores it (:func:`~covalent_core.store.queries.notify_cancel`); every
service listens, so the one running the dispatch applies it at once instead of at its next read
of the store. The store stays the truth: a notice only says where to look, and after a lost
connection the service reads the store for what it may have missed. An SQLite store has one
host, whose clients wake its service over the socket: nothing to listen to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..store import Store
from ..store.queries import CANCEL_CHANNEL

logger = logging.getLogger(__name__)

RECONNECT_DELAY = 1.0


def listens(store: Store) -> bool:
    """True if ``store`` can send notices (PostgreSQL through psycopg)."""
    return store.engine.dialect.name == "postgresql" and store.engine.dialect.driver == "psycopg"


async def listen(store: Store, on_notice: Callable[[str | None], None]) -> None:
    """Call ``on_notice(dispatch_id)`` for each cancel announced, until cancelled.

    ``on_notice(None)`` follows each (re)connection: notices sent while not listening are lost,
    so the caller reads the store instead. A lost connection is re-opened after a second.
    """
    import psycopg

    conninfo = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
            async with conn:
                await conn.execute(f"LISTEN {CANCEL_CHANNEL}")
                on_notice(None)
                async for notice in conn.notifies():
                    on_notice(notice.payload)
        except psycopg.Error as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            logger.warning(
                "not listening to the store's notices (%s); reconnecting in %.0f s, and reading "
                "the store at each poll meanwhile",
                reason,
                RECONNECT_DELAY,
            )
        await asyncio.sleep(RECONNECT_DELAY)
