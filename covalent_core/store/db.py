"""Opening the store: engine set-up (SQLite pragmas or any SQLAlchemy URL) and migrations."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from .. import config
from ..errors import StoreError, StoreFullError
from ..permissions import private_file

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HEAD_REVISION = "0010"
# Every revision under migrations/versions (files are named REVISION_description.py).
KNOWN_REVISIONS = {p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("0*.py")}
SQLITE_HEADER = b"SQLite format 3\x00"
# How databases say that they ran out of space (SQLite, PostgreSQL).
FULL_MESSAGES = ("database or disk is full", "no space left", "disk full")
SQLITE_BUSY_TIMEOUT_MS = 60_000
# The PostgreSQL advisory lock held while migrating ("covalent" in ASCII).
MIGRATION_LOCK = 0x636F76616C656E74


def _configure_sqlite(engine: Engine) -> None:
    """A long busy timeout and BEGIN IMMEDIATE for writers: no "database is locked".

    The journal is switched to WAL once the file is known to be a store (see ``_migrate``)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        # How far its commit goes: the disk (FULL), or the operating system (NORMAL, which
        # survives a crash of the process, not a power loss). See Store.write.
        durable = options.get("durable", True)
        conn.exec_driver_sql(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        # A deferred transaction that later writes can fail at once with SQLITE_BUSY when
        # another writer got there first; taking the write lock up front waits instead.
        immediate = options.get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_size(header: bytes) -> int | None:
    """The size an SQLite file's header says the file has (None: the header does not say:
    too short, or written by a version that did not keep the count)."""
    if len(header) < 100:
        return None
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    change_counter = int.from_bytes(header[24:28], "big")
    valid_for = int.from_bytes(header[92:96], "big")
    if pages == 0 or valid_for != change_counter:
        return None
    return pages * page_size


def _first_line(exc: BaseException) -> str:
    """A database error's message without SQLAlchemy's statement and link."""
    orig = getattr(exc, "orig", None)
    return str(orig or exc).splitlines()[0]


class Store:
    """An open store: an engine plus read and write transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        existed = False
        if self.is_sqlite:
            if self.sqlite_path is not None:
                self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            existed = self.sqlite_path is not None and self.sqlite_path.exists()
            self.engine = create_engine(url)
            _configure_sqlite(self.engine)
        else:
            try:
                self.engine = create_engine(url, pool_pre_ping=True)
            except ModuleNotFoundError as exc:
                hint = (
                    "pip install 'covalent-core[postgres]' (psycopg)"
                    if url.startswith("postgresql")
                    else "install the SQLAlchemy driver the URL names"
                )
                raise StoreError(
                    f"the store URL {make_url(url).render_as_string(hide_password=True)} needs "
                    f"a database driver that is not installed ({exc.name}): {hint}"
                ) from None
        self._writer = self.engine.execution_options(sqlite_immediate=True)
        self._quick_writer = self.engine.execution_options(sqlite_immediate=True, durable=False)
        self._migrate()
        if self.sqlite_path is not None:
            for suffix in ("", "-wal", "-shm"):
                private_file(Path(f"{self.sqlite_path}{suffix}"), warn=existed)

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction."""
        with self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Connection]:
        """A write transaction that holds the write lock from its start (SQLite).

        ``durable``: its commit reaches the disk before this returns, so that it survives a
        power loss (SQLite ``synchronous = FULL``; PostgreSQL ``synchronous_commit = on``,
        whatever the server's default). Without, it reaches
        the operating system (or, on PostgreSQL, the server's log buffer): it survives a
        crash of this process, which is all that writes about local tasks need (a local task
        dies with the machine). A full disk raises :class:`StoreFullError` (the transaction
        is rolled back whole)."""
        try:
            with (self._writer if durable else self._quick_writer).begin() as conn:
                if not self.is_sqlite:  # whatever the server's default is
                    setting = "ON" if durable else "OFF"
                    conn.exec_driver_sql(f"SET LOCAL synchronous_commit TO {setting}")
                yield conn
        except OperationalError as exc:
            message = _first_line(exc)
            if not any(word in message.lower() for word in FULL_MESSAGES):
                raise
            where = self.sqlite_path or self.safe_url
            raise StoreFullError(
                f"the store {where} could not be written: {message}. Nothing of this change "
                "was stored; free some space there (or point COVALENT_CORE_DB_URL at another "
                "store) and try again."
            ) from None

    def _migrate(self) -> None:
        if self.is_sqlite:
            self._check_sqlite_file()
        try:
            current = self._revision()
        except SQLAlchemyError as exc:
            raise self._refuse(
                f"cannot be read ({_first_line(exc)})", "It is damaged or not a database."
            ) from None
        if self.is_sqlite:
            # Only now that it is known to be ours: switching the journal rewrites the header.
            raw = self.engine.raw_connection()  # outside any transaction, as SQLite needs
            try:
                raw.cursor().execute("PRAGMA journal_mode = WAL")
            finally:
                raw.close()
        if current == HEAD_REVISION:
            return
        self._check_known(current)
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self._writer.begin() as conn:
            # Services starting together on several hosts migrate once: the first holds the
            # lock (PostgreSQL; SQLite's write lock does the same) and the others, once they
            # have it, find the store migrated. PostgreSQL's DDL is transactional.
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            current = self._revision(conn)
            if current == HEAD_REVISION:
                return
            self._check_known(current)
            cfg.attributes["connection"] = conn
            try:
                command.upgrade(cfg, "head")
            except SQLAlchemyError as exc:
                raise self._half_migrated(current, exc) from None
        logger.info("store %s migrated from %s to %s", self.safe_url, current, HEAD_REVISION)

    def _half_migrated(self, current: str | None, exc: SQLAlchemyError) -> StoreError:
        """The error for a store whose tables do not match its schema revision: a migration
        that was interrupted (a store without transactional schema changes), or a hand edit."""
        where = self.sqlite_path or self.safe_url
        fix = (
            f"Move it aside (mv {self.sqlite_path} {self.sqlite_path}.bad) to start a new "
            "store, or restore it from a backup"
            if self.sqlite_path
            else f"Restore it from a backup, or point {config.ENV_DB_URL} at another store"
        )
        return StoreError(
            f"store {where} says it is at schema revision {current} but its tables do not "
            f"match it: upgrading it to {HEAD_REVISION} failed ({_first_line(exc)}). It was "
            "left half-migrated (a migration was interrupted, or its tables were changed by "
            f"hand). Nothing was changed by this attempt. {fix}; if you know which revision "
            "its tables match, record that one in its alembic_version table."
        )

    def _check_known(self, current: str | None) -> None:
        if current is not None and current not in KNOWN_REVISIONS:
            raise self._refuse(
                f"has schema revision {current!r}, written by a newer covalent-core (this one "
                f"knows revisions up to {HEAD_REVISION})",
                "Upgrade covalent-core to read it.",
                move_aside=False,
            )

    def _revision(self, conn: Connection | None = None) -> str | None:
        """The store's schema revision; None for an empty database."""
        if conn is None:
            with self.engine.connect() as own:
                return self._revision(own)
        tables = set(inspect(conn).get_table_names())
        if "alembic_version" not in tables:
            if tables:
                raise self._refuse(
                    "is not a covalent-core store (it holds the tables "
                    f"{', '.join(sorted(tables)[:8])} and no schema revision)",
                    "",
                )
            return None
        rows = [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
        if any(not isinstance(r, str) or not r for r in rows):
            raise self._refuse(f"has an unreadable schema revision ({rows!r})", "It is damaged.")
        if len(rows) != 1:
            raise self._refuse(
                f"has {len(rows)} schema revision rows ({', '.join(map(repr, rows))}); "
                "a covalent-core store has exactly one",
                "It was changed by hand or by another program.",
            )
        return str(rows[0])

    def _check_sqlite_file(self) -> None:
        path = self.sqlite_path
        if path is None or not path.exists() or path.stat().st_size == 0:
            return
        with open(path, "rb") as fh:
            header = fh.read(100)
        if header[: len(SQLITE_HEADER)] != SQLITE_HEADER:
            raise self._refuse("is not an SQLite database (its first bytes say otherwise)", "")
        expected = _sqlite_size(header)
        size = path.stat().st_size
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            # A checkpoint writes the first page (the new count) before the pages it counts:
            # cut short (a killed process), the file is shorter than its header says, and the
            # write-ahead log, which SQLite reads first, still holds every page.
            return
        if expected is not None and size < expected:
            raise self._refuse(
                f"is truncated: it holds {size} bytes, and its header says {expected}",
                "It is damaged.",
            )

    def _refuse(self, what: str, why: str, *, move_aside: bool = True) -> StoreError:
        where = f"store {self.sqlite_path}" if self.sqlite_path else f"store {self.safe_url}"
        if not move_aside:
            todo = "Nothing was changed."
        elif self.sqlite_path:
            todo = (
                f"Nothing was changed. Move it aside (mv {self.sqlite_path} "
                f"{self.sqlite_path}.bad) and the next command starts a new store, or point "
                f"{config.ENV_DB_URL} at another store."
            )
        else:
            todo = f"Nothing was changed. Point {config.ENV_DB_URL} at a covalent-core store."
        return StoreError(" ".join(part for part in (f"{where} {what}.", why, todo) if part))

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, when the store is one."""
        if not self.is_sqlite:
            return None
        path = self.url.split("///", 1)[-1]
        return Path(path) if path and path != ":memory:" else None

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


def _close_at_exit(pid: int = os.getpid()) -> None:
    """At exit, close the pooled connections (else the garbage collector does, and psycopg
    warns); in a forked child, leave them: they are its parent's."""
    if os.getpid() == pid:
        forget_stores()


atexit.register(_close_at_exit)
