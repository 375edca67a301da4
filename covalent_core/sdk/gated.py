"""Starting a local process that does nothing until its job handle is stored.

A job must never run without its handle in the store: a dispatcher that dies in between would
leave a job nobody can find, and the next one would start the task a second time. So the
process is started behind a gate (a shell waiting for one line on stdin), the handle (PID and
start time, which ``exec`` keeps) is stored, and only then is the gate opened. If the
dispatcher dies first, the gate reads end-of-file and exits without running anything. The
gate marks the moment it opens with a file, so that whoever re-attaches can tell "never
started" from "started and gone".
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from .containment import MARK_VARIABLE
from .processes import ProcessHandle, kill_leftovers

# $1: the mark to create when the gate opens; the rest: the command. No user data is spliced
# into the script: the command reaches exec as arguments.
GATE = 'IFS= read -r go && [ "$go" = go ] || exit 0; : > "$1"; shift; exec "$@" </dev/null'
OPEN = b"go\n"


class GatedProcess:
    """A process waiting at its gate; :meth:`release` lets it run."""

    def __init__(self, proc: asyncio.subprocess.Process, mark: str) -> None:
        self.proc = proc
        self.handle = dataclasses.replace(ProcessHandle.of(proc.pid), mark=mark)

    async def release(self) -> None:
        """Open the gate (nothing happens if the process was killed meanwhile)."""
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.proc.stdin.write(OPEN)
            await self.proc.stdin.drain()
        self.proc.stdin.close()

    async def wait(self) -> int:
        """Wait for the process to end, and kill whatever it left running (the processes that
        carry its marker); its return code (negative: killed by a signal)."""
        code = await self.proc.wait()
        await asyncio.to_thread(kill_leftovers, self.handle)
        return code


async def start_gated(
    argv: list[str],
    started_mark: Path,
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    stdout: IO[Any] | int | None = None,
    stderr: IO[Any] | int | None = None,
) -> GatedProcess:
    """Start ``argv`` in a session of its own, held at the gate; ``started_mark`` is created
    when :meth:`GatedProcess.release` lets it run. Every process it starts carries a task
    marker (in its environment and in the handle), so that none outlives it."""
    mark = uuid.uuid4().hex
    env = {**(os.environ if env is None else env), MARK_VARIABLE: mark}
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        GATE,
        "covalent-gate",
        str(started_mark),
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    return GatedProcess(proc, mark)
