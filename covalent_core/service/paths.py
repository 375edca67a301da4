"""Where the dispatcher service of the current store listens."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .. import config
from ..permissions import private_dir

START_ERROR_FILE = "start-error"  # why the last service could not start (a store, a config)
START_REFUSED = 3  # the service's exit code then


def socket_path() -> Path:
    """Where the service of the current store listens."""
    directory = config.service_dir()
    path = directory / "sock"
    if len(str(path)) < 100:
        return path
    # AF_UNIX paths are limited to ~108 bytes; fall back to a short private directory.
    # It must be ours and owner-only: another user's directory there could hold their socket.
    # The name stands for this very directory: its path (two data directories may share a
    # store) and its inode (a data directory deleted and made again gets a new service).
    short = private_dir(Path("/tmp") / f"covalent-core-{os.getuid()}")
    identity = f"{directory.resolve()}\0{directory.stat().st_ino}".encode()
    return short / f"{hashlib.sha256(identity).hexdigest()[:16]}.sock"
