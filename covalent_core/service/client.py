"""Talking to the dispatcher service, starting it when it is not running.

Nobody has to restart the service by hand: a client that dispatches or cancels starts it,
and one that waits for, reads or lists dispatches (:func:`revive`) starts it when it finds an
unfinished dispatch whose service is gone. The new service takes such dispatches over and
re-attaches to their running jobs.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from .. import config
from ..errors import ServiceError
from ..permissions import private_open
from ..plugins import check_executor_sections
from ..status import TERMINAL, Status
from ..store import leases, open_store
from ..store import triggers as store_triggers
from .ownership import owner_holds
from .paths import START_ERROR_FILE, START_REFUSED, socket_path

START_TIMEOUT = 30.0


class _NoReply(ConnectionError):
    """The service closed the connection without answering: it went away (killed, or
    exiting) while it had the request."""


def _send(path: Path, message: dict[str, Any], timeout: float) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(message).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data.endswith(b"\n"):
        raise _NoReply(f"the service closed the connection without answering {message['op']!r}")
    return json.loads(data)


def start_service() -> subprocess.Popen[bytes]:
    """Start the service in the background, detached from this process (it outlives it).

    The config file is checked too: a mistake in it is this process's error, said at once,
    not a service that cannot start. Its executor sections are checked while the service
    starts (that loads every plugin)."""
    config.check()
    directory = config.service_dir()
    env = config.child_environment()
    env[config.ENV_DB_URL] = config.db_url()
    with private_open(directory / "service.out", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "covalent_core.service"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=str(directory),
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    check_executor_sections()
    return process


def _could_not_start(process: subprocess.Popen[bytes] | None) -> ServiceError | None:
    """The error to raise if the service ``process`` we started exited saying it cannot
    start (a store or config it cannot use), or crashed as it started; None while it runs,
    or if it ended otherwise (it yielded to another service, or was killed: the caller
    starts another)."""
    code = None if process is None else process.poll()
    if code == START_REFUSED:
        try:
            reason = (config.service_dir() / START_ERROR_FILE).read_text().strip()
        except FileNotFoundError:
            return None
        return ServiceError(f"the dispatcher service cannot start: {reason}")
    if code == 1:  # an exception nobody caught: the last line of its traceback says which
        out = config.service_dir() / "service.out"
        lines = [line for line in out.read_text(errors="replace").splitlines() if line.strip()]
        last = lines[-1] if lines else "no output"
        return ServiceError(
            f"the dispatcher service crashed as it started ({last}); see {out}. "
            "This is a bug in covalent-core or a broken installation: please report it."
        )
    return None


def request(
    message: dict[str, Any], *, start: bool = True, timeout: float = 30.0, raw: bool = False
) -> dict[str, Any]:
    """Send ``message`` to the service and return its reply, starting the service if needed."""
    path = socket_path()
    deadline = time.monotonic() + START_TIMEOUT
    last_start = 0.0
    started: subprocess.Popen[bytes] | None = None
    while True:
        try:
            reply = _send(path, message, timeout)
        except (
            FileNotFoundError,
            ConnectionRefusedError,
            ConnectionResetError,
            BrokenPipeError,
            _NoReply,
        ) as exc:
            # All requests are idempotent: a service that went away is replaced and asked again.
            if not start:
                raise ServiceError("the dispatcher service is not running") from exc
            failure = _could_not_start(started)
            if failure is not None:
                raise failure from None
            if time.monotonic() - last_start > 1.0:
                # Again after a second: a service that was exiting as we came may have won
                # the lock race against the first one we started.
                started = start_service()
                last_start = time.monotonic()
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"the dispatcher service did not start within {START_TIMEOUT:g} s; see "
                    f"{config.service_dir() / 'service.log'} and service.out there"
                ) from exc
            time.sleep(0.02)
            continue
        if not reply.get("ok") and not raw:
            raise ServiceError(
                f"the dispatcher service refused {message.get('op')!r}: {reply.get('error')}"
            )
        return reply


def watch(message: dict[str, Any], timeout: float | None) -> dict[str, Any] | None:
    """Send a wait request (``wait_dispatch``, ``wait_nodes``) to a running service and
    return its answer, which comes when what was asked for has ended and is stored.

    None if no answer came: no service is running, it went away while we waited, or
    ``timeout`` seconds passed. The store stays the truth: the caller reads it again.
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(socket_path()))
            sock.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                data += chunk
    except OSError:  # not running, refused, reset, timed out
        return None
    reply = json.loads(data)
    return reply if reply.get("ok") else None


def store_full() -> str | None:
    """Where the store is, if the running service cannot write it (its disk is full)."""
    try:
        reply = request({"op": "ping"}, start=False, timeout=2)
    except (ServiceError, OSError):
        return None
    return str(reply.get("store")) if reply.get("store_full") else None


def service_process() -> psutil.Process | None:
    """The running service process of this store, found by the PID its lock file holds, with
    no request to it (found even while it is too busy to answer one)."""
    directory = config.service_dir()
    try:
        proc = psutil.Process(int((directory / "lock").read_text().strip()))
        ours = "covalent_core.service" in proc.cmdline() and Path(proc.cwd()) == directory
        return proc if ours and proc.status() != psutil.STATUS_ZOMBIE else None
    except (OSError, ValueError, psutil.Error):
        return None


def service_running() -> bool:
    """True if a service answers on this store's socket."""
    try:
        request({"op": "ping"}, start=False, timeout=2)
    except (ServiceError, OSError):
        return False
    return True


def orphaned(dispatch_id: str | None = None) -> bool:
    """True if ``dispatch_id`` (or, with None, any dispatch) is unfinished and its service gone."""
    with open_store().read() as conn:
        now = leases.store_now(conn)
        if dispatch_id is None:
            rows = leases.unfinished_top_level(conn)
        else:
            row = leases.root_owner(conn, dispatch_id)
            live = row is not None and Status(row.status) not in TERMINAL and not row.held
            rows = [row] if live else []
    return any(not owner_holds(row, now) for row in rows)


def revive(dispatch_id: str | None = None) -> bool:
    """Start the service if an unfinished dispatch has none running it; True if one was asked.

    Called by clients that read: ``get_result`` (with or without ``wait``), ``status``, ``list``,
    ``triggers``; the service is also started if this host's triggers have none running them.
    """
    if not orphaned(dispatch_id) and not triggers_unrun():
        return False
    request({"op": "wake"})
    return True


def triggers_unrun() -> bool:
    """True if this host has armed triggers and no service runs them (it was killed, or the
    host restarted): the next service re-arms them."""
    with open_store().read() as conn:
        armed = store_triggers.any_armed_on(conn, socket.gethostname())
    return armed and not service_running()
