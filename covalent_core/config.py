"""Where covalent-core keeps its data and how it reads its configuration file.

Order of precedence for every setting: environment variable, then the TOML config file, then the
default. The config file is ``$COVALENT_CORE_CONFIG`` or ``~/.config/covalent-core/config.toml``::

    [store]
    url = "postgresql+psycopg://user@db.example/covalent"

    [dispatcher]
    idle_timeout = 60
    lease = 30            # seconds a service holds a dispatch without renewing it
    poll_interval = 1.0   # seconds between a busy service's reads of the store
    task_environment = "client"   # or "service": whose environment variables tasks see

    [executors.local]
    max_workers = 8
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from .permissions import private_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_DATA_DIR = "COVALENT_CORE_DATA_DIR"
ENV_DB_URL = "COVALENT_CORE_DB_URL"
ENV_CONFIG = "COVALENT_CORE_CONFIG"
ENV_IDLE_TIMEOUT = "COVALENT_CORE_IDLE_TIMEOUT"
ENV_LEASE = "COVALENT_CORE_LEASE_SECONDS"
ENV_POLL = "COVALENT_CORE_POLL_INTERVAL"
ENV_TASK_ENVIRONMENT = "COVALENT_CORE_TASK_ENVIRONMENT"
TASK_ENVIRONMENTS = ("client", "service")


def data_dir() -> Path:
    """Return the per-user data directory, creating it (mode 0700) if needed."""
    if env := os.environ.get(ENV_DATA_DIR):
        path, where = Path(env), ENV_DATA_DIR
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        base = xdg or str(Path.home() / ".local" / "share")
        path = Path(base) / "covalent-core"
        where = "XDG_DATA_HOME" if xdg else "the default data directory"
    try:
        return private_dir(path)
    except (FileExistsError, NotADirectoryError):
        raise _error(
            f"the data directory {path} ({where}) cannot be made: it, or a directory above it, "
            "is a file. Point COVALENT_CORE_DATA_DIR at a directory (made if missing)."
        ) from None
    except PermissionError as exc:
        raise _error(
            f"the data directory {path} ({where}) cannot be made or used: {exc.strerror}. "
            "Point COVALENT_CORE_DATA_DIR at a directory of yours."
        ) from None


def _error(message: str) -> Exception:
    from .errors import ConfigError

    return ConfigError(message)


def config_path() -> Path:
    """Return the path of the TOML config file (which need not exist)."""
    if env := os.environ.get(ENV_CONFIG):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "covalent-core" / "config.toml"


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> dict[str, Any]:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def load_config() -> dict[str, Any]:
    """Return the parsed config file, or an empty dict when there is none."""
    path = config_path()
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return {}
    source = f" ({ENV_CONFIG})" if os.environ.get(ENV_CONFIG) else ""
    try:
        return _load(str(path), mtime)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _error(
            f"config file {path}{source} is not valid TOML: {exc}. Fix it, or move it away "
            "to use the defaults."
        ) from None
    except IsADirectoryError:
        raise _error(
            f"config file {path}{source} is a directory; point COVALENT_CORE_CONFIG at a TOML "
            "file (it need not exist)."
        ) from None
    except OSError as exc:
        raise _error(
            f"config file {path}{source} cannot be read: {exc.strerror or exc}. Make it "
            "readable, or point COVALENT_CORE_CONFIG elsewhere."
        ) from None


def db_url() -> str:
    """Return the SQLAlchemy URL of the store: env var, config ``[store] url``, or SQLite.
    A URL that is not one raises :class:`~covalent_core.errors.ConfigError` naming where it
    was set."""
    if env := os.environ.get(ENV_DB_URL):
        return _checked_url(env, ENV_DB_URL)
    store = load_config().get("store", {})
    if not isinstance(store, dict):
        raise _error(f'config file {config_path()}: [store] must be a table (url = "...")')
    url = store.get("url")
    if url is not None and url != "":
        return _checked_url(url, f"[store] url in {config_path()}")
    return f"sqlite:///{data_dir() / 'covalent.db'}"


@functools.lru_cache(maxsize=16)
def _checked_url(url: Any, where: str) -> str:
    """``url`` if it is a database URL SQLAlchemy can use here."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    example = "sqlite:////path/to/covalent.db or postgresql+psycopg://user@host/db"
    if not isinstance(url, str):
        raise _error(f"{where} must be a database URL such as {example}, not {url!r}")
    try:
        make_url(url).get_dialect()
    except NoSuchModuleError:  # an ArgumentError too: first
        scheme = url.split(":", 1)[0]
        raise _error(
            f"{where} names a database kind this installation cannot use ({scheme!r}). Use "
            f"sqlite or postgresql+psycopg (pip install 'covalent-core[postgres]'): {example}."
        ) from None
    except ArgumentError:
        raise _error(
            f"{where} is not a database URL: {url!r}. Write one such as {example}."
        ) from None
    except ImportError as exc:
        raise _error(
            f"{where} needs a database driver that is not installed ({exc.name or exc}); for "
            "PostgreSQL: pip install 'covalent-core[postgres]'."
        ) from None
    return url


def executor_defaults(short_name: str) -> dict[str, Any]:
    """Return the ``[executors.<short_name>]`` section of the config file."""
    from .errors import CovalentCoreError

    executors = load_config().get("executors", {})
    options = executors.get(short_name, {}) if isinstance(executors, dict) else None
    if not isinstance(options, dict):
        raise CovalentCoreError(
            f"config file {config_path()}: [executors.{short_name}] must be a table of options "
            f"(write [executors.{short_name}] on its own line, then option = value lines)"
        )
    return dict(options)


def idle_timeout() -> float:
    """Seconds the local dispatcher service waits with nothing to do before it exits."""
    return _dispatcher_setting(ENV_IDLE_TIMEOUT, "idle_timeout", 60.0)


# The config file's sections and [dispatcher] keys that mean something here; others (such
# as Covalent's, which ct.set_config stores) are kept and ignored unless they look like a
# misspelling of one of these.
SECTIONS = ("store", "dispatcher", "executors")
DISPATCHER_KEYS = ("idle_timeout", "lease", "poll_interval", "db_path", "task_environment")
STORE_KEYS = ("url",)


def check() -> None:
    """Read the config file and check what covalent-core uses of it; a mistake raises
    :class:`~covalent_core.errors.CovalentCoreError` naming the key and what to write."""
    import difflib

    from .errors import CovalentCoreError

    data = load_config()
    path = config_path()
    for section in data:
        close = difflib.get_close_matches(section, SECTIONS, n=1, cutoff=0.75)
        if section not in SECTIONS and close:
            raise CovalentCoreError(
                f"config file {path}: unknown section [{section}]; did you mean [{close[0]}]?"
            )
    # [dispatcher] also holds Covalent's keys (qelectron_db_path is not a misspelt db_path):
    # only a close likeness counts there. [store] is ours alone.
    for section, known, cutoff in (
        ("dispatcher", DISPATCHER_KEYS, 0.75),
        ("store", STORE_KEYS, 0.6),
    ):
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise CovalentCoreError(f"config file {path}: [{section}] must be a table")
        for key in table:
            close = difflib.get_close_matches(key, known, n=1, cutoff=cutoff)
            if key not in known and close:
                raise CovalentCoreError(
                    f"config file {path}: unknown key [{section}] {key}; did you mean {close[0]}?"
                )
    idle_timeout()
    lease_seconds()
    poll_interval()
    task_environment()
    executors = data.get("executors", {})
    if not isinstance(executors, dict):
        raise CovalentCoreError(
            f"config file {path}: [executors] must hold [executors.NAME] tables"
        )
    for name in executors:
        executor_defaults(name)


def _dispatcher_setting(env: str, key: str, default: float) -> float:
    from .errors import CovalentCoreError

    raw: Any = os.environ.get(env)
    where = env
    if raw is None:
        raw = load_config().get("dispatcher", {}).get(key, default)
        where = f"[dispatcher] {key} in {config_path()}"
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if not value > 0:
        raise CovalentCoreError(f"{where} must be a number of seconds above 0, got {raw!r}")
    return value


def lease_seconds() -> float:
    """How long a dispatcher service holds a dispatch without renewing it (default 30 s).

    A service renews its dispatches' leases every third of this; once a lease has expired
    (its service died, or its host did), another service sharing the store takes it over."""
    return _dispatcher_setting(ENV_LEASE, "lease", 30.0)


def poll_interval() -> float:
    """Seconds between a busy service's reads of the store for new dispatches and cancels
    (default 1 s). Its own clients wake it at once; on PostgreSQL, so do other hosts' cancels."""
    return _dispatcher_setting(ENV_POLL, "poll_interval", 1.0)


def task_environment() -> str:
    """Whose environment variables local tasks see: ``client`` (default: the process that
    dispatched them; kept on its host, never in the store) or ``service`` (the dispatcher
    service's, as in Covalent)."""
    from .errors import CovalentCoreError

    raw: Any = os.environ.get(ENV_TASK_ENVIRONMENT)
    where = ENV_TASK_ENVIRONMENT
    if raw is None:
        raw = load_config().get("dispatcher", {}).get("task_environment", "client")
        where = f"[dispatcher] task_environment in {config_path()}"
    if raw not in TASK_ENVIRONMENTS:
        raise CovalentCoreError(
            f"{where} must be one of {', '.join(map(repr, TASK_ENVIRONMENTS))}, got {raw!r}"
        )
    return str(raw)


def service_dir() -> Path:
    """Directory for the dispatcher service's socket, lock and log, one per store URL."""
    digest = hashlib.sha256(db_url().encode()).hexdigest()[:12]
    return private_dir(private_dir(data_dir() / "service") / digest)


def tasks_dir() -> Path:
    """Directory for local tasks' own files (start marks, outcomes), one per store URL.

    Each task has a subdirectory ``DISPATCH_ID-NODE_ID`` that outlives the dispatcher service,
    so that the next service finds what a task finished while none was running.
    """
    return private_dir(service_dir() / "tasks")


def child_environment() -> dict[str, str]:
    """This process's environment for the processes it starts (service, workers).

    ``PYTHONPATH`` gets the directory holding ``covalent_core``, so they import the same
    package even when it runs from a source tree that is not installed.
    """
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


# -- Covalent's configuration functions, over the same TOML file ---------------------------


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    return {prefix: value}


def _defaults() -> dict[str, Any]:
    """Every key, in Covalent's sections too. Those with a meaning here say where things are
    (``sdk.config_file``, ``dispatcher.db_path``, ``sdk.log_dir``, ...); Covalent's server
    settings (addresses, ports, heartbeats, its Dask cluster) are present with Covalent's
    defaults and have no effect: there is no server to reach (docs/covalent-compatibility.md)."""
    data, url = data_dir(), db_url()
    service_log = str(data / "service")
    return {
        "store": {"url": url},
        "sdk": {
            "config_file": str(config_path()),
            "log_dir": service_log,
            "log_level": "warning",
            "enable_logging": "true",
            "executor_dir": str(config_path().parent / "executor_plugins"),
            "no_cluster": "true",
            "exhaustive_postprocess": "false",
            "dispatch_cache_dir": str(data),
            "task_packing": "true",
            "results_dir": str(data / "values"),
        },
        "dispatcher": {
            "idle_timeout": idle_timeout(),
            "address": "localhost",
            "port": 48008,
            "cache_dir": str(data),
            "results_dir": str(data / "values"),
            "log_dir": service_log,
            "db_path": url.split("///", 1)[-1] if url.startswith("sqlite") else url,
            "heartbeat_interval": 5,
            "heartbeat_file": str(data / "service" / "heartbeat"),
            "use_async_dispatcher": "true",
            "asset_cache_size": 32,
        },
        "dask": {
            "cache_dir": str(data),
            "log_dir": service_log,
            "mem_per_worker": "auto",
            "threads_per_worker": 1,
            "num_workers": os.cpu_count() or 1,
        },
        "workflow_data": {"storage_type": "local", "base_dir": str(data / "values")},
        "user_interface": {
            "address": "127.0.0.1",
            "port": 48008,
            "dev_port": 49009,
            "log_dir": service_log,
        },
        "executors": {},
    }


def _merged() -> dict[str, Any]:
    merged = _defaults()
    for key, value in _flatten("", load_config()).items():
        _set_in(merged, key, value)
    return merged


def _set_in(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        child = data.get(part)
        if not isinstance(child, dict):
            child = data[part] = {}
        data = child
    data[parts[-1]] = value


def _get_in(data: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            raise KeyError(
                f"no configuration value {key!r}; set it with ct.set_config({key!r}, value) or "
                f"in {config_path()}"
            )
        data = data[part]
    return data


def get_config(entries: str | list[str] | None = None) -> Any:
    """Covalent's ``get_config``: everything, one dotted key, or a dict of several keys.

    Keys are the config file's (``store.url``, ``dispatcher.idle_timeout``,
    ``executors.slurm.address``, ...); ``dispatcher.db_path`` reads the store's SQLite path.
    Other Covalent keys read back what ``set_config`` stored.
    """
    merged = _merged()
    if not entries:
        return merged
    if isinstance(entries, str):
        return _get_alias(merged, entries)
    if len(entries) == 1:
        return _get_alias(merged, entries[0])
    return {key: _get_alias(merged, key) for key in entries}


def _get_alias(merged: dict[str, Any], key: str) -> Any:
    if key == "dispatcher.db_path":  # the store's, whichever way it was set
        url = _get_in(merged, "store.url")
        return url.split("///", 1)[-1] if url.startswith("sqlite") else url
    return _get_in(merged, key)


def set_config(new_config: dict[str, Any] | str, new_value: Any = None) -> None:
    """Covalent's ``set_config``: one dotted key and a value, or a dict of them; saved at once.

    ``dispatcher.db_path`` sets the store to that SQLite file. The file is written with
    owner-only permissions.
    """
    import tomli_w

    updates = {new_config: new_value} if isinstance(new_config, str) else dict(new_config)
    data = dict(load_config())
    for key, value in updates.items():
        if key == "dispatcher.db_path":
            key, value = "store.url", f"sqlite:///{Path(str(value)).expanduser()}"
        if value is None:
            raise ValueError(f"set_config({key!r}, None): TOML has no null; remove the key instead")
        _set_in(data, key, value)
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        tomli_w.dump(data, fh)
    os.replace(partial, path)
    reload_config()


def reload_config() -> None:
    """Covalent's ``reload_config``: read the config file again (it is also re-read on change)."""
    _load.cache_clear()
