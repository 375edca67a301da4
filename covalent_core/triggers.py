"""Covalent's ``ct.triggers``: not supported here; each name says what to use instead.

Covalent's triggers re-dispatch a lattice when a time passes or a directory changes, run by
its server. covalent-core has no trigger server: schedule the dispatch with the machine's
scheduler (cron, a systemd timer) running ``covalent-core redispatch ID`` or a script that
calls ``ct.dispatch``, or watch a directory in your own loop (e.g. with ``watchdog``).
"""

from __future__ import annotations

from typing import Any

ADVICE = (
    "covalent-core does not run Covalent's triggers: schedule `covalent-core redispatch ID` "
    "(or a script calling ct.dispatch) with cron or a systemd timer, or watch the directory "
    "in your own loop and dispatch from there"
)


class BaseTrigger:
    """Covalent's trigger base class; creating any trigger raises NotImplementedError."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__}: {ADVICE}")


class TimeTrigger(BaseTrigger):
    """Covalent's time trigger (not supported)."""


class DirTrigger(BaseTrigger):
    """Covalent's directory trigger (not supported)."""


class DatabaseTrigger(BaseTrigger):
    """Covalent's database trigger (not supported)."""


class SQLiteTrigger(BaseTrigger):
    """Covalent's SQLite trigger (not supported)."""


def stop_triggers(dispatch_ids: Any = None, triggers_server_addr: Any = None) -> None:
    """Covalent's ``ct.stop_triggers``: there are no triggers to stop here."""
    raise NotImplementedError(f"stop_triggers: {ADVICE}")
