"""Reading a deadline: ``"2h"``, ``"90m"``, ``"30s"``, ``"1d"``, ``"1h30m"``, a number of
seconds, a ``timedelta``, or a ``datetime`` (naive: local time) or ISO date-time text."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*([dhms])\s*)+$")
PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])")

HINT = (
    'a deadline is a duration ("2h", "90m", "1h30m", "45s", "1d", or seconds as a number), '
    "a datetime.timedelta, or a datetime (naive: local time) or its ISO text"
)


def deadline_at(value: Any, now: float) -> float | None:
    """When ``value`` falls, in seconds since the epoch (None: no deadline); ValueError or
    TypeError saying what a deadline may be."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{HINT}, not {value!r}")
    if isinstance(value, (int, float)):
        return _after(float(value), now, value)
    if isinstance(value, dt.timedelta):
        return _after(value.total_seconds(), now, value)
    if isinstance(value, dt.datetime):
        return _future(value.timestamp(), now, value)
    if isinstance(value, str):
        text = value.strip().lower()
        if DURATION.match(text):
            seconds = sum(float(n) * UNITS[unit] for n, unit in PART.findall(text))
            return _after(seconds, now, value)
        try:
            return _future(dt.datetime.fromisoformat(value.strip()).timestamp(), now, value)
        except ValueError:
            pass
        try:
            return _after(float(text), now, value)
        except ValueError:
            raise ValueError(f"{HINT}, not {value!r}") from None
    raise TypeError(f"{HINT}, not {type(value).__name__} {value!r}")


def _after(seconds: float, now: float, given: Any) -> float:
    if not seconds > 0:
        raise ValueError(f"a deadline is in the future: {given!r} is not (give a duration > 0)")
    return now + seconds


def _future(at: float, now: float, given: Any) -> float:
    if at <= now:
        raise ValueError(f"the deadline {given!r} has passed already")
    return at


def time_left(at: float | None, now: float) -> str:
    """``"in 1h 59m"``, ``"passed"``, or empty when there is no deadline."""
    if at is None:
        return ""
    left = at - now
    if left <= 0:
        return "passed"
    hours, rest = divmod(int(left), 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"in {hours}h {minutes:02d}m"
    return f"in {minutes}m {seconds:02d}s" if minutes else f"in {seconds}s"
