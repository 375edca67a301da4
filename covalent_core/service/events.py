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
import time
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
_events_handler: EventLogHandler | None = None
"""The service's log handler, once :func:`log_handler` made it."""


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
        self._second = -1
        self._stamp = ""
        self._prefix = f"{os.getpid()} {logger.name} INFO "

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record) + self.terminator, record.levelno >= logging.WARNING)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write_event(self, message: str) -> None:
        """Write an INFO line of the events logger, formatted as :data:`LOG_FORMAT` would,
        without a log record (made for each event, it would cost more than the write)."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        line = f"{self._stamp},{int((now - second) * 1000):03d} {self._prefix}{message}\n"
        with self.lock:  # type: ignore[union-attr]
            self._write(line, False)

    def _write(self, text: str, flush: bool) -> None:
        if self.stream is None:
            self.stream = self._open()
        if self._size is None:
            self._size = os.fstat(self.stream.fileno()).st_size
        if self.maxBytes and self._size and self._size + len(text) > self.maxBytes:
            self.doRollover()
            self._size = 0
        self.stream.write(text)
        self._size += len(text)
        if flush:
            self.stream.flush()
        elif self._timer is None:
            self._timer = threading.Timer(FLUSH_INTERVAL, self._flush_later)
            self._timer.daemon = True
            self._timer.start()

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
    global _events_handler
    _events_handler = handler
    return handler


def _value(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def event(kind: str, /, **fields: Any) -> None:
    """Log one event of ``kind`` (fields that are None are left out).

    In the service (whose log is :func:`log_handler`'s and nothing else is configured for
    the events logger), the line goes straight to the file."""
    if logger.isEnabledFor(logging.INFO):
        parts = [f"event={kind}"]
        parts += [f"{key}={_value(value)}" for key, value in fields.items() if value is not None]
        handler = _events_handler
        if handler is not None and _direct(handler):
            handler.write_event(" ".join(parts))
        else:
            logger.info(" ".join(parts))


def _direct(handler: EventLogHandler) -> bool:
    """True if ``handler`` is the only one the events logger's records would reach."""
    return (
        not logger.handlers
        and logger.propagate
        and handler.level <= logging.INFO
        and logging.root.handlers == [handler]
        and not logger.filters
        and not logging.root.filters
    )
