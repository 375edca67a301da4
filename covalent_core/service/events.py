"""The dispatcher's log of what happened, one event per line, ``event=NAME key=value ...``
(logfmt: values with spaces are quoted), at INFO: dispatches received and ended, nodes
started and ended with their stage, cancels requested, confirmed and retried, takeovers.
Lines reach the file within :data:`FLUSH_INTERVAL` (a warning or worse at once): two events
per node must not cost two system calls on the dispatcher's loop.

    grep 'event=node_ended' service.log | grep status=FAILED
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import threading
from pathlib import Path
from typing import Any

from ..permissions import private_file

logger = logging.getLogger("covalent_core.events")

LOG_FILE = "service.log"
"""The service's log, in its directory; rotated at LOG_BYTES, LOG_BACKUPS kept."""
LOG_BYTES = 10 * 2**20
LOG_BACKUPS = 5
LOG_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
FLUSH_INTERVAL = 0.25


class EventLogHandler(logging.handlers.RotatingFileHandler):
    """A rotating file handler that writes through its stream's buffer.

    The standard one seeks, tells and flushes for every record (and formats it twice); this
    one counts the bytes it wrote, and a timer flushes what is buffered ``FLUSH_INTERVAL``
    after the first unflushed record. Warnings and errors are flushed at once.
    """

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups)
        self._size: int | None = None
        self._timer: threading.Timer | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + self.terminator
            if self.stream is None:
                self.stream = self._open()
            if self._size is None:
                self._size = os.fstat(self.stream.fileno()).st_size
            if self.maxBytes and self._size and self._size + len(text) > self.maxBytes:
                self.doRollover()
                self._size = 0
            self.stream.write(text)
            self._size += len(text)
            if record.levelno >= logging.WARNING:
                self.stream.flush()
            elif self._timer is None:
                self._timer = threading.Timer(FLUSH_INTERVAL, self._flush_later)
                self._timer.daemon = True
                self._timer.start()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _flush_later(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._timer = None
            self.flush()

    def close(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        super().close()


def log_handler(directory: Path) -> logging.Handler:
    """The service's log handler: ``directory/service.log``, owner-only, rotated."""
    path = directory / LOG_FILE
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    private_file(path)
    handler = EventLogHandler(path, LOG_BYTES, LOG_BACKUPS)
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
