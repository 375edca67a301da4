"""Reading what tasks wrote, a piece at a time: ``covalent-core logs`` and ``logs -f``.

A task's stdout or stderr may be gigabytes. It is never read whole: a reader keeps, for each
task and stream, the number of bytes it has shown, and reads on from there in chunks of at
most :data:`CHUNK` bytes; ``--tail N`` starts N lines from the end, found by reading backwards.
Where the text is depends on the task: in its directory while it runs on this machine, in a
file among the dispatch's values once it ended (a big one) or in the store (a small one), or,
for a task running elsewhere, with its executor (asked through the dispatcher service).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .sdk.output import OUTPUT_TIMEOUT, check_stream, local_output, local_path
from .values import VALUE_REF, value_ref_path

CHUNK = 1 << 20
"""Bytes read at a time."""
TAIL_BLOCK = 1 << 16


@dataclass
class Source:
    """Where one stream of one task is now: a file on this machine, or text in memory."""

    path: str | None = None
    text: bytes | None = None

    def size(self) -> int:
        """How many bytes there are so far."""
        if self.path is not None:
            try:
                return os.stat(self.path).st_size
            except OSError:
                return 0
        return len(self.text or b"")

    def read(self, offset: int) -> Iterator[bytes]:
        """What comes after ``offset``, in chunks of at most :data:`CHUNK` bytes."""
        if self.path is None:
            data = self.text or b""
            for start in range(offset, len(data), CHUNK):
                yield data[start : start + CHUNK]
            return
        try:
            with open(self.path, "rb") as fh:
                fh.seek(offset)
                while chunk := fh.read(CHUNK):
                    yield chunk
        except OSError:
            return

    def tail_start(self, lines: int) -> int:
        """The offset where the last ``lines`` lines begin, read backwards a block at a time
        (a final newline ends the last line; it starts none)."""
        end = self.size()
        if lines == 0 or end == 0:
            return end
        if self._range(end - 1, end) == b"\n":
            end -= 1
        needed, position = lines, end
        while position > 0:
            start = max(0, position - TAIL_BLOCK)
            block = self._range(start, position)
            index = len(block)
            while needed:
                index = block.rfind(b"\n", 0, index)
                if index < 0:
                    break
                needed -= 1
            if needed == 0:
                return start + index + 1
            position = start
        return 0

    def _range(self, start: int, end: int) -> bytes:
        if self.path is None:
            return (self.text or b"")[start:end]
        try:
            with open(self.path, "rb") as fh:
                fh.seek(start)
                return fh.read(end - start)
        except OSError:
            return b""


def source(node: Any, stream: str) -> Source | None:
    """Where ``stream`` of ``node`` (a
    :class:`~covalent_core._results_manager.result.NodeResult`) is now; None if nothing can
    be read yet (it runs elsewhere and its executor cannot tell)."""
    check_stream(stream)
    stored = node.stdout_stored if stream == "stdout" else node.stderr_stored
    if stored is not None:
        data = stored.encode()
        if data[: len(VALUE_REF)] == VALUE_REF:
            return Source(path=value_ref_path(data))
        return Source(text=data)
    if node.status.is_terminal:
        return Source(text=b"")
    path = local_path(node.job_handle, stream)
    if path is not None and os.path.exists(path):
        return Source(path=path)
    text = running_output(node, stream)  # asked of the task's executor, through the service
    return None if text is None else Source(text=text.encode())


@dataclass
class Cursor:
    """How far a reader got in one task's stream, and whether it stands at a line's start."""

    offset: int | None = None
    at_line_start: bool = True


@dataclass
class Follower:
    """Reads on, for each task and stream, from where it stopped; ``tail``: start that many
    lines from the end the first time a stream is seen."""

    tail: int | None = None
    cursors: dict[tuple[int, str], Cursor] = field(default_factory=dict)

    def new(self, node: Any, stream: str) -> Iterator[tuple[bytes, bool]]:
        """The bytes of ``stream`` not shown yet, in chunks, each with whether it starts a
        line (so that a prefix goes only at line starts)."""
        where = source(node, stream)
        if where is None:
            return
        cursor = self.cursors.setdefault((node.node_id, stream), Cursor())
        if cursor.offset is None:
            cursor.offset = where.tail_start(self.tail) if self.tail is not None else 0
        for chunk in where.read(cursor.offset):
            yield chunk, cursor.at_line_start
            cursor.offset += len(chunk)
            cursor.at_line_start = chunk.endswith(b"\n")


def prefixed(chunk: bytes, prefix: bytes, at_line_start: bool) -> bytes:
    """``chunk`` with ``prefix`` at the start of each of its lines."""
    lines = chunk.splitlines(keepends=True)
    if not lines:
        return b""
    head = lines[0] if not at_line_start else prefix + lines[0]
    return head + b"".join(prefix + line for line in lines[1:])


def running_output(node: Any, stream: str) -> str | None:
    """What a running task has written so far to ``stream`` ("stdout" or "stderr"): read
    from its files when it runs on this machine, else asked of the dispatcher service,
    which reads it through the task's executor (its files over SSH, the Slurm job's
    output, CloudWatch Logs). None when there is nothing to read (the task ended, the
    service is not running, the executor cannot tell)."""
    handle = node.job_handle
    if node.status.is_terminal or not handle:
        return None
    text = local_output(handle, stream)
    if text is not None or node.dispatch_id is None:
        return text
    from .errors import ServiceError
    from .service.client import request

    message = {
        "op": "read_output",
        "dispatch_id": node.dispatch_id,
        "node_id": node.node_id,
        "stream": stream,
    }
    try:
        reply = request(message, start=False, timeout=OUTPUT_TIMEOUT + 5)
    except (ServiceError, OSError):
        return None
    return reply.get("text")
