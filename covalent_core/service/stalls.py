"""Saying so when the service stalls: every thread's stack goes to ``service.out``.

A service that answers nobody for seconds is a bug to find, and the stacks at that moment
are what finds it. Two kinds are caught: the event loop itself blocked (a watchdog the loop
re-arms every second fires when it is not re-armed in time), and a request that takes long
to answer although the loop runs (it waits on a thread, a lock, the store).
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import sys
import time
from collections.abc import Awaitable
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

LOOP_STALL = 10.0
"""Seconds the event loop may go without running its watchdog before the stacks are written."""
SLOW_REQUEST = 10.0
"""Seconds a request may take to be answered before the stacks are written."""
REARM_EVERY = 1.0
TASKS_SHOWN = 40


async def watch_loop() -> None:
    """Until cancelled: write every thread's stack to stderr (``service.out``) whenever the
    event loop has not come back here for :data:`LOOP_STALL` seconds."""
    try:
        while True:
            faulthandler.dump_traceback_later(LOOP_STALL, file=sys.stderr)
            await asyncio.sleep(REARM_EVERY)
    finally:
        faulthandler.cancel_dump_traceback_later()


async def timed(what: str, answer: Awaitable[T]) -> T:
    """Await ``answer``; if it took over :data:`SLOW_REQUEST` seconds, log it and write every
    thread's stack and the default thread pool's backlog to stderr (``service.out``), so that
    the log says what the service was waiting on."""
    started = time.monotonic()
    done = asyncio.ensure_future(answer)
    try:
        return await asyncio.wait_for(asyncio.shield(done), SLOW_REQUEST)
    except asyncio.TimeoutError:
        logger.warning(
            "request %r unanswered after %.0f s: stacks in service.out", what, SLOW_REQUEST
        )
        _dump(what)
        result = await done
        logger.warning("request %r answered after %.1f s", what, time.monotonic() - started)
        return result
    except asyncio.CancelledError:
        done.cancel()
        raise


def _dump(what: str) -> None:
    pool = getattr(asyncio.get_running_loop(), "_default_executor", None)
    threads = len(getattr(pool, "_threads", ()))
    queued = getattr(getattr(pool, "_work_queue", None), "qsize", lambda: 0)()
    print(
        f"--- request {what!r} unanswered after {SLOW_REQUEST:.0f} s; default thread pool: "
        f"{threads} threads, {queued} calls waiting for one",
        file=sys.stderr,
    )
    faulthandler.dump_traceback(file=sys.stderr)
    for task in list(asyncio.all_tasks())[:TASKS_SHOWN]:
        task.print_stack(limit=4, file=sys.stderr)
    sys.stderr.flush()
