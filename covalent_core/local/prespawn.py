"""A warm worker started the moment the dispatcher service starts, before its own imports.

A client that finds no service starts one, and its first task waits for that service to
import and open its store, then for a worker to start. Started first, the worker starts
while the service does: the first pool of local workers (same interpreter) adopts it.
"""

from __future__ import annotations

import os
import subprocess
import sys

_early: subprocess.Popen[bytes] | None = None


def start() -> None:
    """Start one warm worker now (the service calls this first thing)."""
    global _early
    from .. import config
    from ..sdk import containment

    env = config.child_environment()
    base = containment.cgroup_base()
    if base is not None:
        env[containment.CGROUP_BASE_VARIABLE] = base
    try:
        _early = subprocess.Popen(
            [sys.executable, "-m", "covalent_core.local.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    except OSError:
        _early = None  # the pool starts its own


def take(python_path: str) -> subprocess.Popen[bytes] | None:
    """The early worker, once, if it runs ``python_path`` and is alive."""
    global _early
    early, _early = _early, None
    if early is None:
        return None
    if (
        os.path.realpath(python_path) != os.path.realpath(sys.executable)
        or early.poll() is not None
    ):
        early.stdin.close()  # type: ignore[union-attr]
        return None
    return early
