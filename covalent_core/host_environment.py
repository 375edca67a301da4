"""The dispatching process's environment variables, kept on its host and out of the store.

Tasks on the dispatching machine see the environment variables of the process that
dispatched them (API tokens included). Those never enter the store, which other hosts and
users may read: ``dispatch()`` writes them to an owner-only file beside the store's service
(``<data dir>/service/<store>/environments/<dispatch id>.json``, mode 0600), the service of
this host reads them when it runs the dispatch, and removes the file when the dispatch ends.
The store only records the host that keeps them, so that another host's service taking the
dispatch over can say that its tasks run with its own service's environment instead.

``[dispatcher] task_environment = "service"`` (or ``COVALENT_CORE_TASK_ENVIRONMENT``) gives
Covalent's behaviour: nothing is kept, and tasks see the service's environment.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from . import config
from .permissions import private_dir

logger = logging.getLogger(__name__)

DIRECTORY = "environments"
KEPT_BY = "variables_kept_by"
"""In a dispatch's stored environment: the host and service directory that keep its
variables (``{"host": ..., "directory": ...}``)."""


def _directory() -> Path:
    return private_dir(config.service_dir() / DIRECTORY)


def _path(dispatch_id: str) -> Path:
    return _directory() / f"{dispatch_id}.json"


def keep(dispatch_id: str, variables: dict[str, str]) -> dict[str, str]:
    """Write ``variables`` for ``dispatch_id`` (owner-only, atomically); what the stored
    environment records instead of them."""
    path = _path(dispatch_id)
    partial = path.with_suffix(".partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8") as fh:
            json.dump(variables, fh)
        os.replace(partial, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        exc.filename = exc.filename or str(path)
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    return {KEPT_BY: _keeper()}


def _keeper() -> dict[str, str]:
    return {"host": socket.gethostname(), "directory": str(config.service_dir())}


def load(dispatch_id: str) -> dict[str, str] | None:
    """The variables kept for ``dispatch_id`` on this host (None: none are kept here)."""
    try:
        with open(_path(dispatch_id), encoding="utf-8") as fh:
            variables = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("the environment kept for dispatch %s cannot be read: %s", dispatch_id, exc)
        return None
    return variables if isinstance(variables, dict) else None


def discard(dispatch_id: str) -> None:
    """Remove the variables kept for ``dispatch_id`` (its dispatch ended, or was not stored)."""
    with contextlib.suppress(FileNotFoundError):
        _path(dispatch_id).unlink()


def kept(older_than: float = 0.0) -> list[str]:
    """The dispatches whose variables this host keeps (written ``older_than`` s ago or more)."""
    now = time.time()
    found = []
    for path in _directory().glob("*.json"):
        with contextlib.suppress(FileNotFoundError):
            if now - path.stat().st_mtime >= older_than:
                found.append(path.stem)
    return found


def discard_all(dispatch_ids: Iterable[str]) -> None:
    """:func:`discard` each of ``dispatch_ids``."""
    for dispatch_id in dispatch_ids:
        discard(dispatch_id)


def note_for(stored: dict[str, object] | None) -> str | None:
    """What a local task's node says when the variables of its dispatch are not here: the
    dispatch was made on another host (or data directory), whose service stopped, and this
    one took it over."""
    kept_by = (stored or {}).get(KEPT_BY)
    if not isinstance(kept_by, dict) or kept_by == _keeper():
        return None
    where = kept_by.get("host", "another host")
    if where == socket.gethostname():
        where = f"{where} (data directory {Path(str(kept_by.get('directory'))).parents[1]})"
    return (
        f"ran with the environment variables of the dispatcher service that took this "
        f"dispatch over on {socket.gethostname()}: it was dispatched on {where}, which keeps "
        "the dispatching process's environment"
    )


def mode() -> str:
    """``client`` (tasks see the dispatching process's variables) or ``service``."""
    return config.task_environment()
