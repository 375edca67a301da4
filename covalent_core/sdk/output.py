"""Reading what a running task has written so far, from the files its executor writes on
this machine.

An executor whose tasks run here (the local worker pool, Braket's hybrid process, SSH's
``run_local_on_ssh_fail``) names the task's directory in its job handle as ``dir``; the task's
stdout and stderr are the files ``stdout`` and ``stderr`` there, written as it runs.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

STREAMS = ("stdout", "stderr")
OUTPUT_TIMEOUT = 10.0
"""Seconds an executor has to read a running task's output for a client."""


def check_stream(stream: str) -> None:
    """Refuse a stream name other than "stdout" and "stderr"."""
    if stream not in STREAMS:
        raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")


def local_path(handle: Any, stream: str) -> str | None:
    """The file of ``stream`` in the handle's ``dir`` (a dict, or its JSON), when the handle
    names a directory on this host; None otherwise."""
    if isinstance(handle, str):
        try:
            handle = json.loads(handle)
        except ValueError:
            return None
    if not isinstance(handle, dict) or not handle.get("dir"):
        return None
    if handle.get("host", socket.gethostname()) != socket.gethostname():
        return None
    return os.path.join(str(handle["dir"]), stream)


def local_output(handle: Any, stream: str) -> str | None:
    """The text of ``stream`` in the handle's ``dir`` (see :func:`local_path`); None when
    there is none here, or the file is not there."""
    check_stream(stream)
    path = local_path(handle, stream)
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            return fh.read().decode(errors="replace")
    except OSError:
        return None
