"""Opening the store: engine set-up (SQLite pragmas or any SQLAlchemy URL) and migrations."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text

from .. import config

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HEAD_REVISION = "0003"
SQLITE_BUSY_TIMEOUT_MS = 60_000


def _configure_sqlite(engine: Engine) -> None:
    """WAL, a long busy timeout, and BEGIN IMMEDIATE for writers: no "database is locked"."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that later writes can fail at once with SQLITE_BUSY when
        # another writer got there first; taking the write lock up front waits instead.
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Store:
    """An open store: an engine plus read and write transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url)
            _configure_sqlite(self.engine)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._writer = self.engine.execution_options(sqlite_immediate=True)
        self._migrate()

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction."""
        with self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction that holds the write lock from its start (SQLite)."""
        with self._writer.begin() as conn:
            yield conn

    def _migrate(self) -> None:
        with self.engine.connect() as conn:
            try:
                current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except Exception:
                conn.rollback()
                current = None
        if current == HEAD_REVISION:
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self._writer.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        logger.info("store %s migrated from %s to %s", self.safe_url, current, HEAD_REVISION)

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


_stores: dict[str, Store] = {}
_lock = threading.Lock()


def open_store(url: str | None = None) -> Store:
    """Return the store at ``url`` (default: :func:`covalent_core.config.db_url`), migrated."""
    url = url or config.db_url()
    with _lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = Store(url)
        return store


def forget_stores() -> None:
    """Drop cached stores (after a fork, or when tests switch store URLs)."""
    with _lock:
        for store in _stores.values():
            store.dispose()
        _stores.clear()
