"""Owner-only files and directories: created so, tightened (with a warning) when found wider,
refused when another user owns them.

The data directory, the store, logs and task outcomes hold results, environments and options;
nobody but their owner may read them.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import IO, Any

from .errors import CovalentCoreError

logger = logging.getLogger("covalent_core")


def private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) or make sure it is ours and owner-only; returns it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(path, 0o700, directory=True)
    return path


FLAGS = {
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "r+": os.O_RDWR | os.O_CREAT,
}


def private_open(path: Path | str, mode: str = "w", **kwargs: Any) -> IO[Any]:
    """Open ``path`` for writing (``w``, ``a``, ``r+``, with ``b`` for bytes), creating it
    owner-only (0600) whatever the umask; an existing wider file is tightened."""
    fd = os.open(path, FLAGS[mode.replace("b", "")], 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, 0o600)
        return open(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def private_file(path: Path, *, warn: bool = True) -> None:
    """Make sure an existing file is ours and owner-only (0600); a missing one is skipped.

    ``warn=False``: the file was just created here, tightening it is no news."""
    _tighten(path, 0o600, directory=False, warn=warn)


def _tighten(path: Path, mode: int, *, directory: bool, warn: bool = True) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    kind = "directory" if directory else "file"
    if stat.S_ISLNK(info.st_mode) or (stat.S_ISDIR(info.st_mode) != directory):
        raise CovalentCoreError(
            f"{path} should be a {kind} of yours but is a "
            f"{'symbolic link' if stat.S_ISLNK(info.st_mode) else 'different kind of file'}; "
            "remove it or choose another place (COVALENT_CORE_DATA_DIR)"
        )
    if info.st_uid != os.getuid():
        raise CovalentCoreError(
            f"{path} belongs to user id {info.st_uid}, not to you ({os.getuid()}): another user "
            "could read or replace what covalent-core keeps there. Remove it, or choose "
            "another place (COVALENT_CORE_DATA_DIR)"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, mode)
        if not warn:
            return
        logger.warning(
            "%s was readable by others (mode %o): made owner-only (%o)",
            path,
            stat.S_IMODE(info.st_mode),
            mode,
        )
