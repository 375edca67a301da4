"""Where the dispatcher service of the current store listens."""

from __future__ import annotations

import os
from pathlib import Path

from .. import config


def socket_path() -> Path:
    """Where the service of the current store listens."""
    path = config.service_dir() / "sock"
    if len(str(path)) < 100:
        return path
    # AF_UNIX paths are limited to ~108 bytes; fall back to a short private directory.
    short = Path("/tmp") / f"covalent-core-{os.getuid()}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / f"{config.service_dir().name}.sock"
