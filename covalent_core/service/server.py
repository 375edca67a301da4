"""The dispatcher service process: a Unix socket for wake-ups, the store for everything else.

Clients write dispatches and cancel flags to the store, then send a message here so the
service acts at once instead of at its next poll. One service runs per store URL and user on a
host (a lock file makes sure); it exits after ``idle_timeout`` seconds with nothing to do.
Stopped while dispatches run (SIGTERM, ``covalent-core service stop``), it leaves their jobs
running for the next service to re-attach to, as it must when it is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import time
from typing import Any

from .. import config
from ..errors import CovalentCoreError
from ..store import open_store
from .dispatcher import Dispatcher
from .paths import socket_path

logger = logging.getLogger(__name__)

BUSY_POLL = 1.0
IDLE_POLL = 5.0


class Service:
    """The running service: dispatcher, socket server and idle timer."""

    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self.dispatcher = Dispatcher(open_store())
        self.wake = asyncio.Event()
        self.stopping = False
        self.listening_at: float | None = None  # wall-clock time the socket was ready

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one client: a JSON request line, a JSON reply line."""
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            request = json.loads(line or b"{}")
            reply = await self.dispatch_request(request)
        except Exception as exc:
            logger.exception("bad request")
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        with contextlib.suppress(ConnectionError):
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
            writer.close()

    async def dispatch_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Carry out one request."""
        op = request.get("op")
        if op == "ping":
            return {
                "ok": True,
                "pid": os.getpid(),
                "owner": self.dispatcher.owner,
                "listening_at": self.listening_at,
            }
        if op == "wake":
            await self.dispatcher.poll_new()
            return {"ok": True}
        if op == "cancel":
            await self.dispatcher.poll_new()
            applied = await self.dispatcher.apply_cancels(request.get("dispatch_ids"))
            return {"ok": True, "applied": applied}
        if op == "cancel_tasks":
            # The CLI's fast path: this process has the store open and everything imported.
            from ..cancel_requests import request_cancel

            try:
                report = await asyncio.to_thread(
                    request_cancel, request["dispatch_id"], request.get("task_ids")
                )
            except CovalentCoreError as exc:
                return {"ok": False, "error_type": type(exc).__name__, "error": str(exc)}
            await self.dispatcher.poll_new()
            await self.dispatcher.apply_cancels([report.dispatch_id, *report.sub_dispatches])
            return {"ok": True, "report": report.to_json()}
        if op == "shutdown":
            self.stopping = True
            self.wake.set()
            return {"ok": True}
        return {"ok": False, "error": f"unknown request {op!r}"}

    async def serve(self) -> None:
        """Run until idle for ``idle_timeout`` seconds (or asked to stop)."""
        path = socket_path()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        server = await asyncio.start_unix_server(self.handle, path=str(path))
        os.chmod(path, 0o600)
        self.listening_at = time.time()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop)
        logger.info("dispatcher service %s listening on %s", self.dispatcher.owner, path)
        last_busy = time.monotonic()
        try:
            await self.dispatcher.poll_new()
            while not self.stopping:
                interval = BUSY_POLL if self.dispatcher.busy else min(IDLE_POLL, self.idle_timeout)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), interval)
                self.wake.clear()
                if self.stopping:
                    break
                await self.dispatcher.poll_new()
                if self.dispatcher.busy:
                    await self.dispatcher.apply_cancels()
                    last_busy = time.monotonic()
                elif time.monotonic() - last_busy >= self.idle_timeout:
                    logger.info("idle for %.0f s: exiting", self.idle_timeout)
                    break
        finally:
            server.close()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            if self.dispatcher.busy:
                await self.leave_jobs_running()
            await self.dispatcher.close()

    async def leave_jobs_running(self) -> None:
        """Stop now without touching a single job: the next service re-attaches to them.

        Exiting the normal way would cancel the tasks that watch the jobs, and through them
        kill local workers; so once the store has every write, the process just ends.
        """
        await self.dispatcher.writes.flush()
        logger.info(
            "stopping with %d dispatch(es) running: their jobs keep running, and the next "
            "service (started by the next client) re-attaches to them",
            len(self.dispatcher.top_level),
        )
        logging.shutdown()
        os._exit(0)

    def _stop(self) -> None:
        self.stopping = True
        self.wake.set()


def main() -> int:
    """Entry point of the service process; exits at once if another instance holds the lock."""
    directory = config.service_dir()
    logging.basicConfig(
        filename=directory / "service.log",
        level=logging.INFO,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    lock = open(directory / "lock", "w")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0
    lock.write(str(os.getpid()))
    lock.flush()
    try:
        asyncio.run(Service(config.idle_timeout()).serve())
    except Exception:
        logger.exception("dispatcher service crashed")
        raise
    return 0
