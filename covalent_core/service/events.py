"""The dispatcher's log of what happened, one event per line, ``event=NAME key=value ...``
(logfmt: values with spaces are quoted), at INFO: dispatches received and ended, nodes
started and ended with their stage, cancels requested, confirmed and retried, takeovers.

    grep 'event=node_ended' service.log | grep status=FAILED
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path
from typing import Any

from ..permissions import private_file

logger = logging.getLogger("covalent_core.events")

LOG_FILE = "service.log"
"""The service's log, in its directory; rotated at LOG_BYTES, LOG_BACKUPS kept."""
LOG_BYTES = 10 * 2**20
LOG_BACKUPS = 5
LOG_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"


def log_handler(directory: Path) -> logging.Handler:
    """The service's log handler: ``directory/service.log``, owner-only, rotated."""
    path = directory / LOG_FILE
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    private_file(path)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS
    )
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler


def _value(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def event(kind: str, /, **fields: Any) -> None:
    """Log one event of ``kind`` (fields that are None are left out)."""
    if logger.isEnabledFor(logging.INFO):
        parts = [f"event={kind}"]
        parts += [f"{key}={_value(value)}" for key, value in fields.items() if value is not None]
        logger.info(" ".join(parts))
