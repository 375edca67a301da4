"""Covalent's triggers: run a workflow again when time passes, a directory changes or rows
appear in a table.

``@ct.lattice(triggers=TimeTrigger(time_gap=60))`` makes ``ct.dispatch`` register the
dispatch without running it, and store its triggers; the dispatcher service on this host
arms them (and arms them again after a restart), and stays up while any is armed. A
trigger's first firing starts the registered dispatch; each later one redispatches it: a new
dispatch that records the trigger (``Result.triggered_by``) and the dispatch it came from
(``Result.redispatched_from``). ``ct.stop_triggers(dispatch_id)`` or ``covalent-core
triggers stop`` disarms them; cancelling a triggered run does not.

Triggers watch the host that registered them (its clock, its directories): only the service
of that host runs them. A custom trigger subclasses :class:`BaseTrigger`: ``observe()``
calls ``self.trigger()`` whenever a run is due (it may block: it runs in a thread of its
own), ``stop()`` makes it return.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import CovalentCoreError, TriggerNotFoundError
from .redispatching import rerun
from .service import client as service
from .store import open_store
from .store import queries as q
from .store import triggers as rows

RUNTIME_ATTRIBUTES = ("stop_flag", "event_loop", "observer", "event_handler", "engine")
"""Attributes a trigger sets while it runs: never stored with it."""


class BaseTrigger:
    """Covalent's base class of triggers (same constructor and attributes)."""

    def __init__(
        self,
        lattice_dispatch_id: str | None = None,
        dispatcher_addr: str | None = None,
        triggers_server_addr: str | None = None,
    ) -> None:
        self.lattice_dispatch_id = lattice_dispatch_id
        self.dispatcher_addr = dispatcher_addr  # Covalent's server address: unused here
        self.triggers_server_addr = triggers_server_addr  # likewise
        self.new_dispatch_ids: list[str] = []
        self.observe_blocks = True
        self.event_loop: Any = None
        self.use_internal_funcs = True
        self.stop_flag: threading.Event | None = None
        self.trigger_id: str | None = None
        """Ours: the id it was stored under (``covalent-core triggers`` lists it)."""

    def describe(self) -> str:
        """What it watches, in a few words (listed by ``covalent-core triggers``)."""
        return "custom trigger"

    def register(self) -> None:
        """Store this trigger, armed, for ``lattice_dispatch_id``: the service runs it."""
        if not self.lattice_dispatch_id:
            raise RuntimeError(
                "this trigger has no lattice_dispatch_id: set it to a dispatch's id (or pass "
                "the trigger to @ct.lattice(triggers=...)) before registering it"
            )
        with open_store().write() as conn:
            q.get_dispatch(conn, self.lattice_dispatch_id)  # an unknown id says so
            rows.arm(conn, self.lattice_dispatch_id, [self], socket.gethostname())
        service.request({"op": "triggers"})

    def trigger(self) -> None:
        """Run the workflow: start its dispatch if it was only registered, else redispatch it.
        Called by ``observe()`` whenever a run is due."""
        if not self.lattice_dispatch_id:
            raise RuntimeError(
                "`lattice_dispatch_id` is None: attach this trigger to a lattice before "
                "triggering it"
            )
        dispatch_id = fire(self.lattice_dispatch_id, self.trigger_id)
        if dispatch_id != self.lattice_dispatch_id:
            self.new_dispatch_ids.append(dispatch_id)

    def to_dict(self) -> dict[str, Any]:
        """Its attributes and class name, as Covalent gives them."""
        data = {k: v for k, v in self.__dict__.items() if k not in RUNTIME_ATTRIBUTES}
        data["name"] = type(self).__name__
        return data

    def observe(self) -> None:
        """Watch for what makes a run due, calling ``self.trigger()`` then; subclasses say
        what (it may block until :meth:`stop`)."""

    def stop(self) -> None:
        """Make ``observe()`` return."""
        self._stop_event().set()

    def _stop_event(self) -> threading.Event:
        if self.stop_flag is None:
            self.stop_flag = threading.Event()
        return self.stop_flag

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in RUNTIME_ATTRIBUTES}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for name in RUNTIME_ATTRIBUTES:
            self.__dict__.setdefault(name, None)


class TimeTrigger(BaseTrigger):
    """Runs the workflow every ``time_gap`` seconds (the first time ``time_gap`` after it is
    armed)."""

    def __init__(
        self,
        time_gap: float,
        lattice_dispatch_id: str | None = None,
        dispatcher_addr: str | None = None,
        triggers_server_addr: str | None = None,
    ) -> None:
        super().__init__(lattice_dispatch_id, dispatcher_addr, triggers_server_addr)
        if isinstance(time_gap, bool) or not isinstance(time_gap, (int, float)) or time_gap <= 0:
            raise ValueError(f"TimeTrigger's time_gap is a number of seconds > 0, not {time_gap!r}")
        self.time_gap = time_gap

    def describe(self) -> str:
        return f"every {self.time_gap:g} s"

    def observe(self) -> None:
        stop = self._stop_event()
        while not stop.wait(self.time_gap):
            self.trigger()


DIR_EVENTS = ("created", "deleted", "modified", "moved", "closed")


class DirTrigger(BaseTrigger):
    """Runs the workflow after every ``batch_size`` events of ``event_names`` (a subset of
    created, deleted, modified, moved, closed) in ``dir_path`` (a file or a directory;
    ``recursive``: its subdirectories too), watched with watchdog."""

    def __init__(
        self,
        dir_path: str | Path,
        event_names: str | Iterable[str],
        batch_size: int = 1,
        recursive: bool = False,
        lattice_dispatch_id: str | None = None,
        dispatcher_addr: str | None = None,
        triggers_server_addr: str | None = None,
    ) -> None:
        super().__init__(lattice_dispatch_id, dispatcher_addr, triggers_server_addr)
        names = [event_names] if isinstance(event_names, str) else list(event_names)
        unknown = [n for n in names if n not in DIR_EVENTS]
        if not names or unknown:
            raise ValueError(
                f"DirTrigger's event_names are some of {', '.join(DIR_EVENTS)}, "
                f"not {unknown or names}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DirTrigger's batch_size is a whole number >= 1, not {batch_size!r}")
        self.dir_path = str(dir_path)
        self.event_names = names
        self.batch_size = batch_size
        self.recursive = recursive
        self.observe_blocks = False
        self.n_changes = 0

    def describe(self) -> str:
        every = "" if self.batch_size == 1 else f" (every {self.batch_size})"
        return f"{'/'.join(self.event_names)} in {self.dir_path}{every}"

    def observe(self) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        path = Path(self.dir_path).expanduser().resolve()
        if not path.exists():
            raise FileNotFoundError(f"DirTrigger: {path} does not exist")
        wanted = set(self.event_names)
        trigger = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type not in wanted or event.is_synthetic:
                    return
                trigger.n_changes += 1
                if trigger.n_changes >= trigger.batch_size:
                    trigger.n_changes = 0
                    trigger.trigger()

        self.event_handler = Handler()
        self.observer = Observer()
        self.observer.schedule(self.event_handler, str(path), recursive=self.recursive)
        self.observer.start()

    def stop(self) -> None:
        observer = getattr(self, "observer", None)
        if observer is not None:
            observer.stop()
            observer.join(5)


class DatabaseTrigger(BaseTrigger):
    """Reads ``table_name`` every ``poll_interval`` seconds (``where_clauses``: SQL conditions
    joined with AND) and runs the workflow each ``trigger_after_n``-th time rows are there.
    ``db_path`` is an SQLAlchemy URL."""

    def __init__(
        self,
        db_path: str,
        table_name: str,
        poll_interval: float = 1,
        where_clauses: list[str] | None = None,
        trigger_after_n: int = 1,
        lattice_dispatch_id: str | None = None,
        dispatcher_addr: str | None = None,
        triggers_server_addr: str | None = None,
    ) -> None:
        super().__init__(lattice_dispatch_id, dispatcher_addr, triggers_server_addr)
        self.db_path = db_path
        self.table_name = table_name
        self.poll_interval = poll_interval
        self.where_clauses = where_clauses
        self.trigger_after_n = trigger_after_n

    def describe(self) -> str:
        where = f" where {' and '.join(self.where_clauses)}" if self.where_clauses else ""
        return f"rows in {self.table_name}{where}, read every {self.poll_interval:g} s"

    def url(self) -> str:
        """The SQLAlchemy URL of the database."""
        return self.db_path

    def observe(self) -> None:
        from sqlalchemy import create_engine, select, table, text

        # The user's own table and conditions, as Covalent takes them: the table name is
        # quoted as a name; the conditions are the user's SQL.
        query = select(text("*")).select_from(table(self.table_name))
        for clause in self.where_clauses or ():
            query = query.where(text(clause))
        self.engine = create_engine(self.url())
        stop = self._stop_event()
        seen = 0
        try:
            while not stop.is_set():
                with self.engine.connect() as conn:
                    found = conn.execute(query).first() is not None
                if found:
                    seen += 1
                    if seen >= self.trigger_after_n:
                        seen = 0
                        self.trigger()
                stop.wait(self.poll_interval)
        finally:
            self.engine.dispose()


class SQLiteTrigger(DatabaseTrigger):
    """A :class:`DatabaseTrigger` on an SQLite file: ``db_path`` is the file's path."""

    def url(self) -> str:
        return f"sqlite:///{Path(self.db_path).expanduser().resolve()}"


available_triggers: dict[str, type[BaseTrigger]] = {
    cls.__name__: cls
    for cls in (BaseTrigger, DatabaseTrigger, DirTrigger, TimeTrigger, SQLiteTrigger)
}
"""Covalent's name-to-class table of the triggers it knows."""


def from_dict(data: dict[str, Any]) -> BaseTrigger:
    """A trigger from Covalent's ``to_dict()`` of it (its class named by ``name``)."""
    cls = available_triggers.get(str(data.get("name")))
    if cls is None:
        raise ValueError(
            f"unknown trigger {data.get('name')!r}: the known ones are "
            f"{', '.join(available_triggers)}; pass a trigger object for a custom one"
        )
    trigger = cls.__new__(cls)
    BaseTrigger.__init__(trigger)
    trigger.__setstate__({k: v for k, v in data.items() if k != "name"})
    return trigger


def start(dispatch_id: str) -> str:
    """Start a dispatch registered without running (``disable_run``, or a lattice with
    triggers); its id. A dispatch already started is left as it is."""
    with open_store().write() as conn:
        q.get_dispatch(conn, dispatch_id)  # an unknown id says so
        started = rows.start_held(conn, dispatch_id)
    if started:
        service.request({"op": "wake"})
    return dispatch_id


def fire(dispatch_id: str, trigger_id: str | None = None) -> str:
    """Start ``dispatch_id`` if it was only registered, else redispatch it (recording the
    trigger); the id of the dispatch that runs."""
    with open_store().write() as conn:
        started = rows.start_held(conn, dispatch_id)
        if trigger_id is not None:
            rows.record_fire(conn, trigger_id)
    if started:
        service.request({"op": "wake"})
        return dispatch_id
    return rerun(dispatch_id, triggered_by=trigger_id)


def stop_triggers(
    dispatch_ids: str | Iterable[str], triggers_server_addr: str | None = None
) -> list[str]:
    """Disarm every trigger of these dispatches (Covalent's ``ct.stop_triggers``); the ids of
    those that were armed. Their runs go on. ``triggers_server_addr`` is accepted and unused."""
    ids = [dispatch_ids] if isinstance(dispatch_ids, str) else list(dispatch_ids)
    if not all(isinstance(i, str) for i in ids):
        raise TypeError(f"stop_triggers takes dispatch ids (strings), not {dispatch_ids!r}")
    with open_store().write() as conn:
        for dispatch_id in ids:
            q.get_dispatch(conn, dispatch_id)  # an unknown id says so
        armed = rows.list_triggers(conn, dispatch_ids=ids, armed_only=True)
        stopped = rows.disarm(conn, [r.trigger_id for r in armed])
    if stopped:
        _tell_service()
    return stopped


def stop_trigger_ids(trigger_ids: Iterable[str]) -> list[str]:
    """Disarm these triggers; the ids of those that were armed. An unknown id raises."""
    ids = list(trigger_ids)
    with open_store().write() as conn:
        found = {r.trigger_id for r in rows.find_triggers(conn, ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise TriggerNotFoundError(
                f"no trigger {', '.join(missing)}; `covalent-core triggers` lists them"
            )
        stopped = rows.disarm(conn, ids)
    if stopped:
        _tell_service()
    return stopped


def _tell_service() -> None:
    """Tell the running service, so that it stops what was disarmed now; none running:
    nothing runs the triggers anyway."""
    with contextlib.suppress(CovalentCoreError, OSError):
        service.request({"op": "triggers"}, start=False, timeout=30)
