"""A warm worker process of the local executor: runs tasks one at a time, sent over stdin.

Started in its own session (so it leads its own process group, which a cancel kills whole).
Frames are an 8-byte big-endian length and a pickle. The dispatcher sends
``(payload, directory)``: the worker creates ``directory/started``, runs the task, and writes
``(outcome, stdout, stderr)`` to ``directory/outcome`` (atomically) before it answers
``("file",)``. The outcome is a file so that a task outlives the dispatcher: when the service
dies the worker finishes the task, writes the file and exits on the closed stdin, and the next
service reads it (see :func:`covalent_core.executors.pool.reattach_worker`). If the file
cannot be written (a full disk), the answer carries the outcome itself: ``("inline", ...)``.
The task's file descriptors 1 and 2 go to capture files, so prints and subprocess output are
both recorded.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import sys
import tempfile
from typing import IO, Any

import psutil

from covalent_core.executors.runner import execute

HEADER = struct.Struct(">Q")
STARTED = "started"
OUTCOME = "outcome"


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


def write_frame(stream: IO[bytes], message: Any) -> None:
    """Write one frame and flush it."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def _read_capture(fh: IO[bytes]) -> str:
    fh.seek(0)
    return fh.read().decode("utf-8", errors="replace")


def _reset_capture(fh: IO[bytes]) -> None:
    fh.seek(0)
    fh.truncate()


def _kill_leftovers() -> None:
    """Kill children the task left running, so nothing outlives the task that started it."""
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(children, timeout=2)


def write_outcome(directory: str, result: tuple[bytes, str, str]) -> bool:
    """Write the task's outcome file atomically; False if it could not be written."""
    path = os.path.join(directory, OUTCOME)
    try:
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as fh:
            pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.rename(path + ".tmp", path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path + ".tmp")
        return False
    return True


def main() -> int:
    """Serve tasks until stdin closes."""
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    out_fh = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
    err_fh = tempfile.TemporaryFile()  # noqa: SIM115
    os.dup2(out_fh.fileno(), 1)
    os.dup2(err_fh.fileno(), 2)
    start_cwd = os.getcwd()
    while True:
        frame = read_frame(proto_in)
        if frame is None:
            return 0
        payload, directory = frame
        # Proof that the task began: without it, a next dispatcher knows it never ran.
        with open(os.path.join(directory, STARTED), "wb"):
            pass
        _reset_capture(out_fh)
        _reset_capture(err_fh)
        outcome = execute(payload)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        _kill_leftovers()
        result = (outcome, _read_capture(out_fh), _read_capture(err_fh))
        answer = ("file",) if write_outcome(directory, result) else ("inline", *result)
        try:
            write_frame(proto_out, answer)
        except BrokenPipeError:
            return 0  # the dispatcher died: the outcome file waits for the next one
        if os.getcwd() != start_cwd:
            os.chdir(start_cwd)


if __name__ == "__main__":
    sys.exit(main())
