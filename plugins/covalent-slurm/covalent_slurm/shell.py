"""Where Slurm commands run: on this machine (a login node) or on a login node over SSH.

Both offer the same few operations; commands are argv lists (joined with ``shlex.join`` only
for the remote shell). The SSH side is covalent-ssh's shared connection, not a second one.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from covalent_ssh.transport import SSHTarget, connection


@dataclass
class Completed:
    """A finished command."""

    returncode: int
    stdout: str
    stderr: str


SLURM_COMMANDS = frozenset({"sbatch", "squeue", "sacct", "scontrol", "scancel", "sinfo"})


def resolve(argv: list[str], slurm_path: str | None) -> list[str]:
    """Slurm's commands from ``slurm_path`` when one is configured."""
    if slurm_path and argv[0] in SLURM_COMMANDS:
        return [posixpath.join(slurm_path, argv[0]), *argv[1:]]
    return argv


class LocalShell:
    """Runs commands with subprocess and touches files directly: we are on the login node."""

    def __init__(self, env: dict[str, str], slurm_path: str | None = None) -> None:
        self.env = env
        self.slurm_path = slurm_path

    def describe(self) -> str:
        return "this machine"

    async def run(self, argv: list[str]) -> Completed:
        argv = resolve(argv, self.slurm_path)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, **self.env},
            )
        except FileNotFoundError:
            return Completed(127, "", f"{argv[0]}: command not found")
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return Completed(
            proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
        )

    async def makedirs(self, path: str) -> None:
        await asyncio.to_thread(os.makedirs, os.path.expanduser(path), 0o700, True)

    async def put(
        self, data: bytes, path: str, cancelled: Callable[[], bool] | None = None
    ) -> None:
        await asyncio.to_thread(Path(os.path.expanduser(path)).write_bytes, data)

    async def read(self, path: str) -> bytes | None:
        target = Path(os.path.expanduser(path))
        try:
            return await asyncio.to_thread(target.read_bytes)
        except FileNotFoundError:
            return None

    async def rename(self, source: str, target: str) -> bool:
        try:
            await asyncio.to_thread(
                os.rename, os.path.expanduser(source), os.path.expanduser(target)
            )
        except OSError:
            return False
        return True

    async def remove_tree(self, path: str) -> None:
        await asyncio.to_thread(shutil.rmtree, os.path.expanduser(path), True)

    async def close(self) -> None:
        pass


class RemoteShell:
    """Runs commands on a login node through covalent-ssh's shared connection."""

    def __init__(
        self, target: SSHTarget, env: dict[str, str], slurm_path: str | None = None
    ) -> None:
        self.target = target
        self.env = env
        self.slurm_path = slurm_path

    def describe(self) -> str:
        return self.target.describe()

    async def run(self, argv: list[str]) -> Completed:
        argv = resolve(argv, self.slurm_path)
        if self.env:
            argv = ["env", *(f"{k}={v}" for k, v in self.env.items()), *argv]
        result = await connection(self.target).run(argv, check=False)
        return Completed(result.exit_status or 0, result.stdout or "", result.stderr or "")

    async def makedirs(self, path: str) -> None:
        await connection(self.target).makedirs(path)

    async def put(
        self, data: bytes, path: str, cancelled: Callable[[], bool] | None = None
    ) -> None:
        await connection(self.target).put(data, path, cancelled)

    async def read(self, path: str) -> bytes | None:
        return await connection(self.target).read(path)

    async def rename(self, source: str, target: str) -> bool:
        return await connection(self.target).rename(source, target)

    async def remove_tree(self, path: str) -> None:
        await connection(self.target).remove_tree(path)

    async def close(self) -> None:
        await connection(self.target).close()


Shell = LocalShell | RemoteShell
