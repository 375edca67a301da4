"""The dispatcher service process: a Unix socket for wake-ups, the store for everything else.

Clients write dispatches and cancel flags to the store, then send a message here so the
service acts at once instead of at its next poll. One service runs per store URL and user on a
host (a lock file makes sure); it exits after ``idle_timeout`` seconds with nothing to do.
Stopped while dispatches run (SIGTERM, ``covalent-core service stop``), it leaves their jobs
running for the next service to re-attach to, as it must when it is killed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .. import config
from ..errors import CovalentCoreError
from ..permissions import private_open
from ..sdk.output import check_stream
from ..store import open_store
from . import notifications, stalls
from .dispatcher import Dispatcher
from .events import LOG_FILE, log_handler
from .paths import START_ERROR_FILE, START_REFUSED, socket_path
from .triggers import TriggerRunner

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

WATCHES = frozenset({"wait_dispatch", "wait_nodes"})
SWITCH_INTERVAL = 0.0005  # seconds a thread may hold the GIL while another waits
GUARD_INTERVAL = 0.5  # how often the service checks that its socket and directory are there
IDLE_POLL = 5.0
THREADS = 32  # the loop's default thread pool
TRIGGERS_EVERY = 5.0  # seconds between reads of the armed triggers (or when a client says)


class Service:
    """The running service: dispatcher, socket server and idle timer."""

    def __init__(self, idle_timeout: float, lock: IO[str] | None = None) -> None:
        self.idle_timeout = idle_timeout
        self.lock = lock  # the held lock file: while it is in place, this is the service
        self.lock_path = config.service_dir() / "lock"
        self.server: asyncio.AbstractServer | None = None
        self.socket_inode: int | None = None
        self.dispatcher = Dispatcher(open_store())
        self.dispatcher.ownership.on_lost = self._leave_lost
        self.wake = asyncio.Event()
        self.stopping = False
        self.listening_at: float | None = None  # wall-clock time the socket was ready
        self.poll = config.poll_interval()
        self.noticed: set[asyncio.Task[Any]] = set()
        self.triggers = TriggerRunner(self.dispatcher.store)
        self.dispatcher.keeps_variables = self.triggers.watches
        self.triggers_read_at = 0.0  # monotonic time the armed triggers were last read

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one client: a JSON request line, a JSON reply line."""
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            request = json.loads(line or b"{}")
            reply: dict[str, Any] | None
            if request.get("op") in WATCHES:
                reply = await self.watch(request, reader)
            else:
                reply = await stalls.timed(str(request.get("op")), self.dispatch_request(request))
        except CovalentCoreError as exc:
            reply = {"ok": False, "error_type": type(exc).__name__, "error": str(exc)}
        except Exception as exc:
            logger.exception("bad request")
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        if reply is None:
            writer.close()
            return
        with contextlib.suppress(ConnectionError):
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
            writer.close()

    async def watch(
        self, request: dict[str, Any], reader: asyncio.StreamReader
    ) -> dict[str, Any] | None:
        """Answer once the dispatch (``wait_dispatch``) or the given nodes (``wait_nodes``)
        have ended and it is stored; at once with ``"watching": False`` if this service does
        not run the dispatch. A client that hangs up stops the watch."""
        dispatch_id = str(request.get("dispatch_id"))
        if request["op"] == "wait_dispatch":
            ended: Any = self.dispatcher.dispatch_ended(dispatch_id)
        else:
            ended = self.dispatcher.nodes_ended(dispatch_id, set(request.get("node_ids") or ()))
        watching = asyncio.ensure_future(ended)
        gone = asyncio.ensure_future(reader.read(1))  # end of file: the client left
        try:
            while True:
                full = self.dispatcher.when_store_full()
                await asyncio.wait({watching, gone, full}, return_when=asyncio.FIRST_COMPLETED)
                full.cancel()
                if watching.done() or gone.done() or not full.done():
                    break
                if await self.dispatcher.writes.still_full():
                    # Nothing can end while the store cannot be written: say why.
                    watching.cancel()
                    return {"ok": True, "watching": False, "store_full": full.result()}
        finally:
            gone.cancel()
        if not watching.done():
            watching.cancel()
            return None
        answer = watching.result()
        if request["op"] == "wait_dispatch":
            return {"ok": True, "watching": answer is not None, "status": answer}
        return {"ok": True, "watching": answer}

    async def dispatch_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Carry out one request."""
        op = request.get("op")
        if op == "ping":
            return {
                "ok": True,
                "pid": os.getpid(),
                "owner": self.dispatcher.owner,
                "listening_at": self.listening_at,
                "store_full": self.dispatcher.writes.full,
                "store": self.dispatcher.store_place,
                "running": sorted(self.dispatcher.top_level),
                "triggers": sorted(self.triggers.running),
                "interpreters": self.dispatcher.executors.interpreters(),
                "log": str(config.service_dir() / LOG_FILE),
            }
        if op == "read_output":
            stream = str(request.get("stream"))
            check_stream(stream)
            text = await self.dispatcher.read_output(
                str(request.get("dispatch_id")), int(request.get("node_id", -1)), stream
            )
            return {"ok": True, "text": text}
        if op == "wake":  # the loop claims what was stored; the client need not wait for it
            self.wake.set()
            return {"ok": True}
        if op == "triggers":  # a trigger was stored or disarmed: run what is armed now
            self.triggers_read_at = time.monotonic()
            await asyncio.to_thread(self.triggers.sync)
            return {"ok": True, "triggers": sorted(self.triggers.running)}
        if op == "cancel":
            try:
                report = await self.dispatcher.cancels.request(
                    request.get("dispatch_id"), request.get("task_ids"), self.dispatcher.poll_new
                )
            except (CovalentCoreError, TypeError) as exc:
                return {"ok": False, "error_type": type(exc).__name__, "error": str(exc)}
            return {"ok": True, "report": report.to_json()}
        if op == "shutdown":
            self.stopping = True
            self.wake.set()
            return {"ok": True}
        return {"ok": False, "error": f"unknown request {op!r}"}

    async def serve(self) -> None:
        """Run until idle for ``idle_timeout`` seconds (or asked to stop)."""
        # The loop's threads wait on the store, on processes being killed (a cancel's grace)
        # and on files: asyncio's default (CPUs + 4) let a few slow kills queue a claim.
        asyncio.get_running_loop().set_default_executor(
            concurrent.futures.ThreadPoolExecutor(THREADS, thread_name_prefix="service")
        )
        path = socket_path()
        await self._listen(path)
        self.listening_at = time.time()
        guard = asyncio.create_task(self._guard(path))
        watchdog = asyncio.create_task(stalls.watch_loop())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop)
        logger.info("dispatcher service %s listening on %s", self.dispatcher.owner, path)
        last_busy = time.monotonic()
        renew_every = self.dispatcher.ownership.lease / 3
        last_renew = time.monotonic()
        listener = None
        if notifications.listens(self.dispatcher.store):
            listener = asyncio.create_task(
                notifications.listen(self.dispatcher.store, self._cancel_noticed)
            )
        try:
            await asyncio.to_thread(self.dispatcher.sweep_environments)
            await self.dispatcher.poll_new()
            self.triggers_read_at = time.monotonic()
            await asyncio.to_thread(self.triggers.sync)
            while not self.stopping:
                interval = self.poll if self.dispatcher.busy else min(IDLE_POLL, self.idle_timeout)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), min(interval, renew_every))
                self.wake.clear()
                if self.stopping:
                    break
                if self.dispatcher.top_level and time.monotonic() - last_renew >= renew_every:
                    last_renew = time.monotonic()
                    await self.dispatcher.ownership.renew()
                await self.dispatcher.poll_new()
                if time.monotonic() - self.triggers_read_at >= TRIGGERS_EVERY:
                    self.triggers_read_at = time.monotonic()
                    await asyncio.to_thread(self.triggers.sync)
                if self.dispatcher.busy:
                    await self.dispatcher.apply_cancels()
                    last_busy = time.monotonic()
                elif self.triggers.armed:
                    last_busy = time.monotonic()  # armed triggers keep the service up
                elif time.monotonic() - last_busy >= self.idle_timeout:
                    logger.info("idle for %.0f s: exiting", self.idle_timeout)
                    break
        finally:
            await asyncio.to_thread(self.triggers.stop_all)
            guard.cancel()
            watchdog.cancel()
            if listener is not None:
                listener.cancel()
            self._close_socket(path)
            if self.dispatcher.busy:
                await self.leave_jobs_running()
            await self.dispatcher.close()

    def _leave_lost(self, lost: list[str]) -> None:
        """Another service took over dispatches this one held past their lease (it was stopped
        or stalled): they are that one's now, jobs included. Leave at once, writing and
        touching nothing (as if killed); the dispatches this one still held are taken over
        like those of a dead service. Runs on the store's writer thread, inside the write
        transaction, which is never committed."""
        logger.error(
            "dispatch(es) %s were taken over by another service after this one held them past "
            "their lease (%.0f s): leaving them and their jobs to it, and stopping",
            ", ".join(lost),
            self.dispatcher.ownership.lease,
        )
        logging.shutdown()
        os._exit(0)

    def _cancel_noticed(self, dispatch_id: str | None) -> None:
        """A cancel was stored (by any host): apply it now if this service runs the dispatch;
        None (notices may have been missed): read every running dispatch's cancels."""
        if dispatch_id is not None and dispatch_id not in self.dispatcher.runs:
            return
        task = asyncio.create_task(
            self.dispatcher.apply_cancels(None if dispatch_id is None else [dispatch_id])
        )
        self.noticed.add(task)
        task.add_done_callback(self.noticed.discard)

    async def _listen(self, path: Path) -> None:
        """Listen on ``path`` (owner-only), replacing whatever file is there."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.server = await asyncio.start_unix_server(self.handle, path=str(path))
        os.chmod(path, 0o600)
        self.socket_inode = path.stat().st_ino

    def _owns(self, path: Path) -> bool:
        try:
            return path.stat().st_ino == self.socket_inode
        except FileNotFoundError:
            return False

    def _close_socket(self, path: Path) -> None:
        """Stop listening; remove the socket only if it is still ours (checked by inode)."""
        if self.server is not None:
            self.server.close()
        if self._owns(path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _lock_in_place(self) -> bool:
        """False once the lock file we hold was removed or replaced (the data directory was
        deleted): another service may start there, with another store."""
        if self.lock is None:
            return True
        try:
            return os.stat(self.lock_path).st_ino == os.fstat(self.lock.fileno()).st_ino
        except FileNotFoundError:
            return False

    async def _guard(self, path: Path) -> None:
        """Keep the service reachable: a removed socket is made again; a removed data
        directory ends this service (its store went with it), leaving jobs running."""
        while not self.stopping:
            await asyncio.sleep(GUARD_INTERVAL)
            if not self._lock_in_place():
                logger.warning(
                    "the service directory %s was removed or replaced: exiting, so that the "
                    "service started there serves it",
                    path.parent,
                )
                self._stop()
                return
            if not self._owns(path):
                logger.warning("socket %s was removed or replaced: listening again", path)
                if self.server is not None:
                    self.server.close()
                await self._listen(path)

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
    logging.basicConfig(level=logging.INFO, handlers=[log_handler(directory)])
    lock = private_open(directory / "lock", "r+")  # held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    # The event loop waits on its threads (store writes, file removals) for the GIL after
    # each system call; at the default 5 ms a cancel's few dozen calls took milliseconds.
    sys.setswitchinterval(SWITCH_INTERVAL)
    start_error = directory / START_ERROR_FILE
    start_error.unlink(missing_ok=True)
    try:
        service = Service(config.idle_timeout(), lock)
    except CovalentCoreError as exc:  # a store or config it cannot use: the client says why
        logger.error("cannot start: %s", exc)
        with private_open(start_error, "w") as fh:
            fh.write(str(exc))
        return START_REFUSED
    try:
        asyncio.run(service.serve())
    except Exception:
        logger.exception("dispatcher service crashed")
        raise
    return 0
