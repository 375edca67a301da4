"""An isolated covalent-core environment for tests: own data directory, store, service, TMPDIR."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def isolated_store(
    data_dir: Path,
    extra_plugins: tuple[str, ...] = (),
    idle_timeout: float = 120,
    db_url: str | None = None,
) -> Iterator[Path]:
    """Point covalent-core at ``data_dir`` (SQLite store, config file, service) until exit.

    ``db_url`` puts the store elsewhere (a PostgreSQL database, say) instead of SQLite in
    ``data_dir``; the data directory still holds the service, its socket and the tasks' files.

    ``TMPDIR`` becomes ``data_dir/tmp`` for this process and for the service and every process
    it starts, so that what a test leaves in a temporary directory is the code under test's,
    never another program's; ``COVALENT_CORE_SYSTEM_TMPDIR`` keeps the one it replaced.
    ``extra_plugins`` are added to ``COVALENT_CORE_EXTRA_PLUGINS`` (the service inherits it).
    On exit the service of that store is shut down and the environment restored.
    """
    from ..plugins import reset_registry
    from ..service.client import request
    from ..store.db import forget_stores

    saved = dict(os.environ)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = data_dir / "tmp"
    scratch.mkdir(mode=0o700, exist_ok=True)
    extra = [*extra_plugins, *saved.get("COVALENT_CORE_EXTRA_PLUGINS", "").split(",")]
    # The temporary directory it replaces, for test servers that other users must enter.
    os.environ.setdefault("COVALENT_CORE_SYSTEM_TMPDIR", tempfile.gettempdir())
    os.environ.update(
        COVALENT_CORE_DATA_DIR=str(data_dir),
        COVALENT_CORE_CONFIG=str(data_dir / "config.toml"),
        COVALENT_CORE_IDLE_TIMEOUT=str(idle_timeout),
        COVALENT_CORE_EXTRA_PLUGINS=",".join(dict.fromkeys(m for m in extra if m)),
        TMPDIR=str(scratch),
    )
    saved_tempdir, tempfile.tempdir = tempfile.tempdir, None
    os.environ.pop("COVALENT_CORE_DB_URL", None)
    if db_url is not None:
        os.environ["COVALENT_CORE_DB_URL"] = db_url
    reset_registry()
    forget_stores()
    try:
        yield data_dir
    finally:
        with contextlib.suppress(Exception):
            request({"op": "shutdown"}, start=False, timeout=10)
        os.environ.clear()
        os.environ.update(saved)
        tempfile.tempdir = saved_tempdir
        reset_registry()
        forget_stores()


@contextlib.contextmanager
def as_host(data_dir: Path) -> Iterator[None]:
    """Inside :func:`isolated_store` with a shared store (``db_url``): act as another host's
    client until exit, with ``data_dir`` as its data directory (its own service, socket, task
    files and config file) and the same store."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = ("COVALENT_CORE_DATA_DIR", "COVALENT_CORE_CONFIG")
    saved = {k: os.environ[k] for k in keys}
    os.environ.update(
        COVALENT_CORE_DATA_DIR=str(data_dir), COVALENT_CORE_CONFIG=str(data_dir / "config.toml")
    )
    try:
        yield
    finally:
        os.environ.update(saved)
