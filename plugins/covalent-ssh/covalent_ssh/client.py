"""One SSH connection per host, shared by every task to it and re-established after a drop.

:class:`SSHTarget` says where to connect and how to trust the host; :func:`connection` returns
the shared :class:`Connection` for a target in the running event loop. Commands are argv
lists, joined with :func:`shlex.join` for the remote shell: user data is never spliced in
unquoted. Covalent-slurm reaches login nodes through this same module.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from covalent_core.sdk import deferred

from .errors import RemoteCommandError, SSHConnectError

asyncssh = deferred("asyncssh")  # imported when a connection is first made

logger = logging.getLogger(__name__)

AGENT_SOURCE = (Path(__file__).parent / "remote.py").read_text()
CHUNK = 4 * 2**20


def transient() -> tuple[type[BaseException], ...]:
    """Errors after which trying again may succeed: the server restarting, a dropped link."""
    return (
        OSError,
        asyncio.TimeoutError,
        asyncssh.ConnectionLost,
        asyncssh.ChannelOpenError,
        asyncssh.ServiceNotAvailable,
    )


@dataclass(frozen=True)
class SSHTarget:
    """Where to connect, as whom, and which host keys to trust."""

    hostname: str
    port: int = 22
    username: str | None = None
    key_file: str | None = None
    cert_file: str | None = None
    known_hosts: str | None = None
    accept_unknown_host_key: bool = False
    connect_timeout: float = 10.0
    retries: int = 3
    max_channels: int = 6

    def describe(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{user}{self.hostname}:{self.port}"

    def known_hosts_file(self) -> str:
        return os.path.expanduser(self.known_hosts or "~/.ssh/known_hosts")

    def _trust(self) -> tuple[Any, bool]:
        """(what asyncssh verifies the host key against, whether the host is known).

        None (accept any key) only by explicit opt-in, and only for a host not known yet.
        """
        path = self.known_hosts_file()
        known = asyncssh.import_known_hosts("")
        if os.path.exists(path):
            known = asyncssh.read_known_hosts(path)
        listed = any(known.match(self.hostname, "", self.port)[:2])
        if not listed and self.accept_unknown_host_key:
            logger.warning("accepting any host key for %s (opted in)", self.describe())
            return None, False
        return known, listed

    def _host_key_error(self, listed: bool, reason: str) -> SSHConnectError:
        path = self.known_hosts_file()
        if listed:
            return SSHConnectError(
                f"the host key of {self.describe()} does not match {path} ({reason}). If the "
                f"server's key changed legitimately, remove the old entry (`ssh-keygen -R "
                f"'[{self.hostname}]:{self.port}'`) and add the new one; otherwise someone may "
                "be intercepting the connection"
            )
        where = f"in {path}" if os.path.exists(path) else f"known: there is no {path}"
        return SSHConnectError(
            f"the host key of {self.describe()} is not {where}. Add it with `ssh-keyscan -p "
            f"{self.port} {self.hostname} >> {path}` after checking it, pass known_hosts=..., "
            "or opt in to accepting unknown keys with accept_unknown_host_key=True"
        )

    async def open(self) -> asyncssh.SSHClientConnection:
        """Connect, retrying transient failures within ``connect_timeout`` seconds in all."""
        trust, listed = self._trust()
        keys: list[Any] = [os.path.expanduser(self.key_file)] if self.key_file else []
        if self.key_file and not os.path.exists(keys[0]):
            raise SSHConnectError(f"ssh_key_file {self.key_file!r} does not exist")
        if self.cert_file:
            cert = os.path.expanduser(self.cert_file)
            if not os.path.exists(cert):
                raise SSHConnectError(f"cert_file {self.cert_file!r} does not exist")
            keys = [(keys[0], cert)] if keys else keys
        deadline = time.monotonic() + self.connect_timeout
        delay, attempt = 0.2, 0
        while True:
            attempt += 1
            left = max(0.1, deadline - time.monotonic())
            try:
                return await asyncio.wait_for(
                    asyncssh.connect(
                        self.hostname,
                        self.port,
                        username=self.username,
                        client_keys=keys or (),
                        known_hosts=trust,
                        connect_timeout=left,
                        keepalive_interval=15,
                        keepalive_count_max=3,
                        agent_path=None if keys else (),
                    ),
                    left,
                )
            except asyncssh.PermissionDenied:
                raise SSHConnectError(
                    f"{self.describe()} refused the key {self.key_file or '(default keys)'}: "
                    "is its public key in the user's authorized_keys?"
                ) from None
            except asyncssh.HostKeyNotVerifiable as exc:
                raise self._host_key_error(listed, exc.reason) from None
            except transient() as exc:
                left = deadline - time.monotonic()
                if attempt >= max(1, self.retries) or left <= delay:
                    why = (
                        f"no answer within {self.connect_timeout:g} s"
                        if isinstance(exc, asyncio.TimeoutError)
                        else f"{type(exc).__name__}: {exc}"
                    )
                    raise SSHConnectError(
                        f"cannot connect to {self.describe()} after {attempt} attempt(s): "
                        f"{why}. Check the host name, port and network"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)


@dataclass
class Connection:
    """The shared connection to one target: commands, file transfer and task watching."""

    target: SSHTarget
    opened: int = 0
    _conn: asyncssh.SSHClientConnection | None = None
    _sftp: asyncssh.SFTPClient | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _watchers: dict[str, Watcher] = field(default_factory=dict)
    _channels: asyncio.Semaphore | None = None
    reconnect_cap: float = 10.0

    async def get(self) -> asyncssh.SSHClientConnection:
        """The live connection, opening a new one if there is none or it dropped."""
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                self._sftp = None
                self._conn = await self.target.open()
                self.opened += 1
                logger.info("connected to %s (connection %d)", self.target.describe(), self.opened)
            return self._conn

    def _forget(self, conn: asyncssh.SSHClientConnection) -> None:
        if self._conn is conn:
            self._conn, self._sftp = None, None
            conn.abort()

    async def _retrying(self, operation: Any) -> Any:
        """Run ``operation(conn)``; after a dropped link, reconnect and run it once more."""
        for attempt in (1, 2):
            conn = await self.get()
            try:
                return await operation(conn)
            except (asyncssh.ConnectionLost, asyncssh.DisconnectError, BrokenPipeError) as exc:
                self._forget(conn)
                if attempt == 2:
                    raise SSHConnectError(
                        f"lost the connection to {self.target.describe()}: {exc}"
                    ) from None
            except asyncssh.ChannelOpenError as exc:
                if conn.is_closed():
                    self._forget(conn)
                if attempt == 2:
                    raise SSHConnectError(
                        f"{self.target.describe()} refused a channel: {exc.reason}"
                    ) from None
        raise AssertionError("unreachable")

    async def run(self, argv: list[str], input: str | None = None, check: bool = True) -> Any:
        """Run ``argv`` remotely (quoted for the shell); return asyncssh's completed process."""
        command = shlex.join(argv)
        if self._channels is None:
            self._channels = asyncio.Semaphore(self.target.max_channels)

        async def op(conn: asyncssh.SSHClientConnection) -> Any:
            async with self._channels:  # type: ignore[union-attr]
                return await conn.run(command, input=input, check=False)

        result = await self._retrying(op)
        if check and result.exit_status != 0:
            stderr = (result.stderr or "").strip() or f"exit status {result.exit_status}"
            raise RemoteCommandError(
                f"on {self.target.describe()}: {argv[0]}: {stderr}",
                command=argv,
                stdout=result.stdout or "",
                stderr=result.stderr or "",
                exit_code=result.exit_status,
            )
        return result

    async def agent(self, python: str, *args: str, check: bool = True) -> Any:
        """Run the remote agent (:mod:`.remote`) under ``python`` with ``args``."""
        return await self.run([python, "-c", AGENT_SOURCE, *args], check=check)

    async def sftp(self) -> asyncssh.SFTPClient:
        conn = await self.get()
        if self._sftp is None:
            self._sftp = await conn.start_sftp_client()
        return self._sftp

    async def put(self, data: bytes, path: str, cancelled: Any = None) -> None:
        """Write ``data`` to the remote ``path`` in chunks, stopping early if ``cancelled()``."""

        async def op(_conn: asyncssh.SSHClientConnection) -> None:
            sftp = await self.sftp()
            async with sftp.open(path, "wb") as fh:
                for start in range(0, max(len(data), 1), CHUNK):
                    if cancelled is not None and cancelled():
                        return
                    await fh.write(data[start : start + CHUNK])

        await self._retrying(op)

    async def makedirs(self, path: str) -> None:
        """Create ``path`` and its parents (new ones private to the user)."""

        async def op(_conn: asyncssh.SSHClientConnection) -> None:
            sftp = await self.sftp()
            attrs = asyncssh.SFTPAttrs(permissions=0o700)
            await sftp.makedirs(path, attrs, exist_ok=True)

        await self._retrying(op)

    async def rename(self, source: str, target: str) -> bool:
        """Rename ``source`` to ``target``; False if that cannot be done (a missing directory)."""

        async def op(_conn: asyncssh.SSHClientConnection) -> bool:
            sftp = await self.sftp()
            try:
                await sftp.rename(source, target)
            except asyncssh.SFTPError:
                return False
            return True

        return await self._retrying(op)

    async def remove_tree(self, path: str) -> None:
        """Delete ``path`` and everything in it; nothing if it does not exist."""

        async def op(_conn: asyncssh.SSHClientConnection) -> None:
            sftp = await self.sftp()
            if await sftp.exists(path):
                await sftp.rmtree(path)

        await self._retrying(op)

    async def read(self, path: str) -> bytes | None:
        """The remote file's bytes, or None if it does not exist."""

        async def op(_conn: asyncssh.SSHClientConnection) -> bytes | None:
            sftp = await self.sftp()
            try:
                async with sftp.open(path, "rb") as fh:
                    return await fh.read()
            except asyncssh.SFTPNoSuchFile:
                return None

        return await self._retrying(op)

    def watcher(self, python: str) -> Watcher:
        """The watcher running under ``python`` on this connection."""
        watcher = self._watchers.get(python)
        if watcher is None:
            watcher = self._watchers[python] = Watcher(self, python)
        return watcher

    async def close(self) -> None:
        for watcher in self._watchers.values():
            await watcher.close()
        self._watchers.clear()
        if self._conn is not None:
            self._conn.close()
            with contextlib.suppress(Exception):
                await self._conn.wait_closed()
        self._conn = self._sftp = None


class Watcher:
    """One remote ``agent watch`` process per connection and interpreter, for all tasks.

    It starts tasks (no new channel or interpreter per task) and reports when they end.
    Tasks keep running when the link drops (they are detached); the watcher is started again
    on the next connection and every pending request is sent anew (both are idempotent).
    """

    def __init__(self, connection: Connection, python: str) -> None:
        self.connection = connection
        self.python = python
        self.pending: dict[tuple[str, str], tuple[str, asyncio.Future[str]]] = {}
        self._process: asyncssh.SSHClientProcess[str] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Lock()
        self._reconnecting = False

    async def start_task(self, directory: str, argv: list[str], env: dict[str, str]) -> Any:
        """Start the task in ``directory`` detached; its identity (pid, start ticks, boot id).

        If no connection can be made, raise: nothing was started. If the link drops after the
        request went out, it is sent again on reconnect (a second start returns the first).
        """
        line = f"start\t{directory}\t{json.dumps(argv)}\t{json.dumps(env)}\n"
        return json.loads(await self._request("start", directory, line, fail_fast=True))

    async def wait_task(self, directory: str, pid: int, ticks: int) -> str:
        """Wait until the task ends: its exit status (negative: a signal), or ``lost``."""
        return await self._request("done", directory, f"add\t{directory}\t{pid}\t{ticks}\n")

    async def _request(self, kind: str, directory: str, line: str, fail_fast: bool = False) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        key = (kind, directory)
        self.pending[key] = (line, future)
        try:
            try:
                async with self._ready:
                    if self._process is None:
                        await self._start()  # sends every pending line, this one included
                    else:
                        self._process.stdin.write(line)
            except (SSHConnectError, *transient(), asyncssh.Error) as exc:
                if fail_fast:
                    raise
                # The task runs detached; keep trying to reach it rather than give up on it.
                logger.warning("cannot reach %s yet: %s", self.connection.target.describe(), exc)
                self._process = None
                asyncio.get_running_loop().create_task(self._reconnect())
            return await future
        finally:
            self.pending.pop(key, None)

    async def _start(self) -> None:
        conn = await self.connection.get()
        command = shlex.join([self.python, "-c", AGENT_SOURCE, "watch"])
        self._process = await conn.create_process(command)
        for line, _ in self.pending.values():
            self._process.stdin.write(line)
        self._reader = asyncio.create_task(self._read(self._process))

    async def _read(self, process: asyncssh.SSHClientProcess[str]) -> None:
        try:
            async for line in process.stdout:
                kind, _, rest = line.rstrip("\n").partition("\t")
                directory, _, value = rest.partition("\t")
                key = ("start" if kind in ("started", "error") else kind, directory)
                entry = self.pending.get(key)
                if entry is None or entry[1].done():
                    continue
                if kind == "error":
                    entry[1].set_exception(
                        RemoteCommandError(f"on {self.connection.target.describe()}: {value}")
                    )
                else:
                    entry[1].set_result(value)
        except (asyncssh.Error, OSError) as exc:
            logger.info("watcher on %s ended: %s", self.connection.target.describe(), exc)
        if self._process is process:
            self._process = None
            if self.pending:
                asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        """The link dropped with requests pending: reconnect (backing off) and resend them."""
        if self._reconnecting:
            return
        self._reconnecting = True
        delay = 0.2
        try:
            while self.pending:
                try:
                    async with self._ready:
                        if self._process is None:
                            await self._start()
                    return
                except (SSHConnectError, *transient(), asyncssh.Error) as exc:
                    logger.warning(
                        "reconnecting to %s for %d task(s): %s",
                        self.connection.target.describe(),
                        len(self.pending),
                        exc,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.connection.reconnect_cap)
        finally:
            self._reconnecting = False

    async def close(self) -> None:
        if self._process is not None:
            self._process.stdin.write_eof()
            self._process.close()
        if self._reader is not None:
            self._reader.cancel()
        for _, future in self.pending.values():
            future.cancel()


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[SSHTarget, Connection]] = (
    weakref.WeakKeyDictionary()
)


def connection(target: SSHTarget) -> Connection:
    """The shared connection to ``target`` in the running event loop."""
    pool = _pools.setdefault(asyncio.get_running_loop(), {})
    conn = pool.get(target)
    if conn is None:
        conn = pool[target] = Connection(target)
    return conn
