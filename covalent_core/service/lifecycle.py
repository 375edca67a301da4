"""Covalent's ``covalent_start``, ``covalent_stop`` and ``is_covalent_running``, on our service.

covalent-core needs no server started by hand (any client starts the dispatcher service when
it is needed); these let Covalent code that starts and stops its server run unchanged.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import psutil

from ..errors import ServiceError
from .client import request, service_process, service_running

START_WAIT = 30.0


def covalent_start(*args: Any, quiet: bool = False, **kwargs: Any) -> None:
    """Start the dispatcher service of the current store (if not running) and wait for it.

    Covalent's server options (port, workers, ...) are accepted and have no effect here.
    """
    reply = request({"op": "ping"}, timeout=START_WAIT)
    if not quiet:
        print(f"covalent-core dispatcher service running (pid {reply.get('pid')})")


def covalent_stop(*, quiet: bool = False) -> None:
    """Stop the dispatcher service and wait until its process is gone (a busy one too);
    running dispatches are taken over by the next one."""
    proc = service_process()
    with contextlib.suppress(ServiceError, OSError):
        request({"op": "shutdown"}, start=False, timeout=10)
    if proc is not None:
        with contextlib.suppress(psutil.Error):
            try:
                proc.wait(START_WAIT)
            except psutil.TimeoutExpired:
                # Too busy to hear the request: SIGTERM stops it the same way (jobs go on).
                proc.terminate()
                proc.wait(START_WAIT)
    deadline = time.monotonic() + START_WAIT
    while service_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not quiet:
        print("covalent-core dispatcher service stopped")


def is_covalent_running() -> bool:
    """True if the dispatcher service of the current store answers."""
    return service_running()
