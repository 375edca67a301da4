"""The service's event log: buffered lines reach the file on their own, warnings at once,
both ways of writing give the same line, and the file rotates at its size."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from helpers import wait_until

from covalent_core.service import events
from covalent_core.service.events import LOG_FORMAT, EventLogHandler

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ covalent_core\.events (\w+) (.*)$")


@pytest.fixture
def handler(tmp_path: Path):
    made = EventLogHandler(tmp_path / "service.log", 0, 0)
    made.setFormatter(logging.Formatter(LOG_FORMAT))
    yield made
    made.close()


def record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("covalent_core.events", level, __file__, 1, message, None, None)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_buffered_event_reaches_the_file_without_another_write_or_a_close(
    handler: EventLogHandler, tmp_path: Path
) -> None:
    handler.write_event("event=node_started dispatch=d node=1")
    # Nothing else is written and the handler stays open: only its timer can flush it.
    found = wait_until(lambda: lines(tmp_path / "service.log"), 60)
    assert found[0].endswith(" INFO event=node_started dispatch=d node=1")


def test_a_warning_is_in_the_file_when_emit_returns(
    handler: EventLogHandler, tmp_path: Path
) -> None:
    handler.write_event("event=first")  # buffered, its timer not yet due
    handler.emit(record(logging.WARNING, "cancel of job 7 failed"))
    written = lines(tmp_path / "service.log")
    assert written[-1].endswith(" WARNING cancel of job 7 failed")
    assert written[0].endswith(" INFO event=first")  # flushed with it, in order


def test_a_direct_event_line_is_the_line_logging_writes(
    handler: EventLogHandler, tmp_path: Path
) -> None:
    handler.write_event("event=a x=1")
    handler.emit(record(logging.INFO, "event=a x=1"))
    handler.flush()
    direct, logged = lines(tmp_path / "service.log")
    assert LINE.match(direct) and LINE.match(logged)
    assert LINE.match(direct).groups() == LINE.match(logged).groups() == ("INFO", "event=a x=1")


def test_event_goes_through_the_services_handler_and_quotes_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = events.log_handler(tmp_path)
    monkeypatch.setattr(logging.root, "handlers", [made])
    monkeypatch.setattr(logging.root, "level", logging.INFO)
    try:
        events.event("node_ended", dispatch="d", node=3, error='bad "x"\nthen', reason=None)
        made.flush()
    finally:
        made.close()
        events._events_handler = None
    (line,) = lines(tmp_path / events.LOG_FILE)
    assert line.endswith(r' INFO event=node_ended dispatch=d node=3 error="bad \"x\"\nthen"')
    assert (tmp_path / events.LOG_FILE).stat().st_mode & 0o077 == 0


def test_the_log_rotates_at_its_size_and_keeps_its_backups(tmp_path: Path) -> None:
    rotating = EventLogHandler(tmp_path / "service.log", 1000, 2)
    rotating.setFormatter(logging.Formatter(LOG_FORMAT))
    try:
        for i in range(60):
            rotating.write_event(f"event=tick n={i:02d} " + "x" * 60)
        rotating.flush()
    finally:
        rotating.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["service.log", "service.log.1", "service.log.2"]
    assert all((tmp_path / name).stat().st_size <= 1000 for name in files)
    assert lines(tmp_path / "service.log")[-1].split(" INFO ")[1].startswith("event=tick n=59")
