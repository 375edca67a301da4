"""Small helpers for tests: waiting for observable facts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, TypeVar

import covalent_core as ct
from covalent_core.testing import wait_until

T = TypeVar("T")


def node(dispatch_id: str, node_id: int) -> ct.NodeResult:
    """The node as stored right now."""
    return ct.get_result(dispatch_id).get_node(node_id)


def wait_for_handle(dispatch_id: str, node_id: int, timeout: float = 30.0) -> dict:
    """Wait until the node's job handle is stored and return it."""
    return wait_until(lambda: node(dispatch_id, node_id).job_handle, timeout)


def wait_for_file(path, timeout: float = 30.0) -> str:
    """Wait until ``path`` exists with content; return the content."""

    def read() -> str:
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            return ""

    return wait_until(read, timeout)


def logged(log_dir: str, name: str, seconds: float, value: Any) -> Any:
    """A task body: note each start (its PID) and end in files of its own, sleep, return."""
    import os as _os
    import time as _time

    with open(_os.path.join(log_dir, f"{name}.starts"), "a") as fh:
        fh.write(f"{_os.getpid()}\n")
    _time.sleep(seconds)
    with open(_os.path.join(log_dir, f"{name}.ends"), "a") as fh:
        fh.write("end\n")
    return value


def starts(log_dir: Path, name: str) -> int:
    """How many times the :func:`logged` task ``name`` started."""
    path = log_dir / f"{name}.starts"
    return len(path.read_text().split()) if path.exists() else 0


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``covalent-core ARGS`` as a user does, in a process of its own (``env``: all of it;
    by default this one's, without the terminal's width: output is as wide as a pipe's)."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run(
        [sys.executable, "-m", "covalent_core", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
