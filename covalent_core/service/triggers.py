"""Running the triggers stored for this host (:mod:`covalent_core.triggers`).

The service reads the armed triggers of its host when it starts, when a client wakes it and
every few seconds; it starts those it does not run yet (``observe`` in a thread of its own
when it blocks) and stops those disarmed meanwhile. A trigger that cannot be loaded, or whose
``observe`` raises, is disarmed with the reason, which ``covalent-core triggers`` shows. A
run a trigger could not start is logged and the trigger stays armed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
from typing import Any

import cloudpickle

from .. import host_environment
from ..status import TERMINAL, Status
from ..store import Store
from ..store import queries as q
from ..store import triggers as rows

logger = logging.getLogger(__name__)

STOP_WAIT = 5.0
"""Seconds a trigger's ``observe`` thread is given to return once stopped."""


class TriggerRunner:
    """The triggers this service runs, by id."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.host = socket.gethostname()
        self.running: dict[str, Any] = {}
        self.threads: dict[str, threading.Thread] = {}
        self.lock = threading.Lock()

    def watches(self, dispatch_id: str) -> bool:
        """True if a trigger this service runs belongs to ``dispatch_id``."""
        return any(t.lattice_dispatch_id == dispatch_id for t in list(self.running.values()))

    @property
    def armed(self) -> bool:
        """True while this service runs a trigger (it then does not exit idle)."""
        return bool(self.running)

    def sync(self) -> None:
        """Start the armed triggers not running yet; stop those no longer armed. Blocking."""
        with self.lock:
            with self.store.read() as conn:
                wanted = {row.trigger_id: row for row in rows.armed_on(conn, self.host)}
            for trigger_id in [t for t in self.running if t not in wanted]:
                self._stop(trigger_id)
            for trigger_id, row in wanted.items():
                if trigger_id not in self.running:
                    self._start(row)

    def stop_all(self) -> None:
        """Stop every trigger (the service is stopping); they stay armed for the next one."""
        with self.lock:
            for trigger_id in list(self.running):
                self._stop(trigger_id)

    def _start(self, row: Any) -> None:
        try:
            trigger = self._load(row)
        except Exception as exc:
            self._disarm(row.trigger_id, f"it could not be loaded here: {exc!r}")
            return
        trigger.trigger_id = row.trigger_id
        trigger.lattice_dispatch_id = row.dispatch_id
        trigger.trigger = _logged(trigger, trigger.trigger)
        self.running[row.trigger_id] = trigger
        logger.info("trigger %s of dispatch %s armed: %s", row.trigger_id, row.dispatch_id,
                    row.description)  # fmt: skip
        if trigger.observe_blocks:
            thread = threading.Thread(
                target=self._observe, args=(trigger,), name=f"trigger-{row.trigger_id[:8]}",
                daemon=True,
            )  # fmt: skip
            self.threads[row.trigger_id] = thread
            thread.start()
        else:
            self._observe(trigger)

    def _load(self, row: Any) -> Any:
        """The stored trigger, found with the import path of its dispatch's process (a
        custom trigger's class lives in the user's code)."""
        with self.store.read() as conn:
            environment = q.get_dispatch(conn, row.dispatch_id).environment or {}
        added = [p for p in environment.get("sys_path") or () if p not in sys.path]
        sys.path.extend(added)
        try:
            return cloudpickle.loads(row.trigger)
        finally:
            for entry in added:
                with contextlib.suppress(ValueError):
                    sys.path.remove(entry)

    def _observe(self, trigger: Any) -> None:
        try:
            trigger.observe()
        except Exception as exc:
            if trigger.trigger_id in self.running:  # not stopped: it failed
                logger.exception("trigger %s stopped: its observe() raised", trigger.trigger_id)
                self.running.pop(trigger.trigger_id, None)
                self._disarm(trigger.trigger_id, f"its observe() raised {exc!r}")

    def _stop(self, trigger_id: str) -> None:
        trigger = self.running.pop(trigger_id)
        try:
            trigger.stop()
        except Exception:
            logger.exception("trigger %s: stop() raised", trigger_id)
        thread = self.threads.pop(trigger_id, None)
        if thread is not None:
            thread.join(STOP_WAIT)
            if thread.is_alive():
                logger.warning("trigger %s: observe() did not return within %.0f s of stop()",
                               trigger_id, STOP_WAIT)  # fmt: skip
        logger.info("trigger %s stopped", trigger_id)
        dispatch_id = trigger.lattice_dispatch_id
        if not self.watches(dispatch_id):  # its variables were kept for its reruns
            with self.store.read() as conn:
                ended = Status(q.get_dispatch(conn, dispatch_id).status) in TERMINAL
            if ended:
                host_environment.discard(dispatch_id)

    def _disarm(self, trigger_id: str, why: str) -> None:
        logger.error("trigger %s disarmed: %s", trigger_id, why)
        with self.store.write() as conn:
            rows.disarm(conn, [trigger_id], error=why)


def _logged(trigger: Any, fire: Any) -> Any:
    """``fire`` (the trigger's own ``trigger``), logging a run it could not start instead of
    ending its ``observe``: the next firing tries again."""

    def trigger_once() -> None:
        try:
            fire()
        except Exception:
            logger.exception(
                "trigger %s could not start a run of dispatch %s",
                trigger.trigger_id,
                trigger.lattice_dispatch_id,
            )
        else:
            logger.info("trigger %s fired", trigger.trigger_id)

    return trigger_once
