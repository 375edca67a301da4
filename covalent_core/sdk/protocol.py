"""What the local executor's parts say to each other, and the files of a task's directory.

Frames, between the dispatcher and a warm worker and between a worker and the process it
forked for a pack of tasks, are an 8-byte big-endian length and a pickle; only our own
processes read them, never a process once it ran user code.

A task's directory (``<tasks dir>/<dispatch>-<node>``, owner-only) holds its output, while it
runs and after, and the marks that say how far it came: ``started`` (made just before it
runs), ``withdrawn`` (made by a cancel that came before it started: it never will) and
``outcome`` (written, atomically, when it ended). A task ran if and only if ``started``
exists and ``withdrawn`` does not; it ended once ``outcome`` exists. A next dispatcher reads
them to re-attach, and a cancel reads them to know whether a pack's process runs the task now.
"""

from __future__ import annotations

import contextlib
import enum
import os
import pickle
import struct
from typing import IO, Any

PackTask = tuple[bytes, str, str, str]
"""A task as a worker hands it to a pack: its payload, its directory, the mark that its
processes carry, and the process's title while it runs (``ps`` shows it)."""
HEADER = struct.Struct(">Q")
REPORT = struct.Struct(">bqqqq")
"""A pack's report of one task: its kind, its index in the pack, and the sizes of the outcome,
stdout and stderr that follow (-1: only in its file)."""
DONE, WITHDRAWN_REPORT, READY = 0, 1, 2
"""Report kinds: a task's outcome; a task withdrawn; the batch is over and the process,
reset, waits for the next."""
INLINE_MAX = 1 << 20  # an outcome up to this size comes with the report
INLINE_STREAM_MAX = 1 << 16  # as does stdout or stderr up to this size
GO = "go"

STARTED = "started"
WITHDRAWN = "withdrawn"
OUTCOME = "outcome"
STDOUT = "stdout"
STDERR = "stderr"
TASK_FILES = (STARTED, WITHDRAWN, OUTCOME, STDOUT, STDERR)
"""The files a task's directory holds (more only if something else wrote there)."""


def read_frame(stream: IO[bytes]) -> Any:
    """Read one frame, or return None at end of stream."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    chunks, remaining = [], size
    while remaining:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return pickle.loads(b"".join(chunks))


def frame(message: Any) -> bytes:
    """``message`` as a frame."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def write_frame(stream: IO[bytes], message: Any) -> None:
    """Write one frame and flush it."""
    stream.write(frame(message))
    stream.flush()


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def mark_file(directory: str, name: str) -> None:
    """Create the (empty, owner-only) mark ``name`` in a task's directory."""
    os.close(os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT, 0o600))


def write_outcome(directory: str, outcome: bytes) -> bool:
    """Write the task's outcome file atomically (owner-only); False if it could not be."""
    path = os.path.join(directory, OUTCOME)
    try:
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as fh:
            fh.write(outcome)
        os.rename(path + ".tmp", path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path + ".tmp")
        return False
    return True


class TaskState(enum.Enum):
    """How far a task came, as its directory says."""

    WAITING = "waiting"
    """Not started (its process may still start it)."""
    WITHDRAWN = "withdrawn"
    """A cancel came before it started: it never runs."""
    RUNNING = "running"
    """Started, no outcome yet."""
    ENDED = "ended"
    """Its outcome is written."""


def task_state(directory: str) -> TaskState:
    """How far the task of ``directory`` came."""
    if os.path.exists(os.path.join(directory, OUTCOME)):
        return TaskState.ENDED
    if os.path.exists(os.path.join(directory, WITHDRAWN)):
        return TaskState.WITHDRAWN
    if os.path.exists(os.path.join(directory, STARTED)):
        return TaskState.RUNNING
    return TaskState.WAITING
