"""A real PostgreSQL server on 127.0.0.1 for the tests: a throwaway cluster made by ``initdb``.

    server = PostgresServer.start()
    url = server.create_database("t1")   # a new, empty database; its SQLAlchemy URL
    server.stop()

The cluster (data, socket, log) lives in one temporary directory owned by the ``postgres``
user (``initdb`` refuses to run as root); the port is chosen free. ``fsync`` is off: the data
is thrown away at the end. Needs Debian's ``postgresql`` package (``covalent-servers-install``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .ports import free_port, server_dir

USER = "postgres"


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL's server binaries (Debian keeps them off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    return Path(found[-1]).parent if found else None


def _major(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name)
    except ValueError:
        return 0


@dataclass
class PostgresServer:
    directory: Path
    port: int
    bindir: Path

    @classmethod
    def start(cls) -> PostgresServer:
        bindir = bin_dir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        directory = server_dir("covalent-postgres-")
        user = pwd.getpwnam(USER)
        os.chown(directory, user.pw_uid, user.pw_gid)
        server = cls(directory, free_port(), bindir)
        server._as_postgres(
            [str(bindir / "initdb"), "-D", str(directory / "data"), "-A", "trust", "-U", USER]
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {server.port} -k {directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300"
        )
        server._pg_ctl("start", "-o", options, "-l", str(directory / "log"))
        return server

    def _as_postgres(self, argv: list[str]) -> None:
        done = subprocess.run(
            ["runuser", "-u", USER, "--", *argv], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.strip() or done.stdout.strip()}")

    def _pg_ctl(self, *args: str) -> None:
        self._as_postgres(
            [str(self.bindir / "pg_ctl"), "-D", str(self.directory / "data"), "-w", *args]
        )

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` and return its URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={USER}", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        try:
            self._pg_ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
