"""Finding plugins and executors: the pluggy plugin manager and the executor registry.

Plugins register under the ``covalent_core.plugins`` entry-point group. Environment:
``COVALENT_CORE_PLUGINS`` (comma-separated entry-point names) limits which load;
``COVALENT_CORE_TRACE_HOOKS=1`` logs every hook call at DEBUG on ``covalent_core.hooks``;
``COVALENT_CORE_EXTRA_PLUGINS`` (comma-separated module names) registers modules that are not
installed as packages (in-house plugins, test doubles).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib.metadata
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import config, hookimpls, hookspecs
from .errors import ExecutorConfigError, ExecutorNotFoundError
from .executor.base import is_covalent_executor
from .sdk.base import Executor

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "covalent_core.plugins"
ENV_PLUGINS = "COVALENT_CORE_PLUGINS"
ENV_TRACE = "COVALENT_CORE_TRACE_HOOKS"
ENV_EXTRA = "COVALENT_CORE_EXTRA_PLUGINS"

# Registered first, always, as ordinary plugins: (name, module).
DEFAULT_PLUGINS = (
    ("local", "covalent_core.local.executor"),
    ("covalent", "covalent_core.executor.adapter"),
)


@dataclass
class ExecutorInfo:
    """An installed executor: where it came from."""

    short_name: str
    cls: type[Executor]
    plugin: str
    package: str
    version: str


@dataclass
class PluginRegistry:
    """The plugin manager, the executors it found, and the plugins that failed to load."""

    manager: pluggy.PluginManager
    executors: dict[str, ExecutorInfo] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def hook(self) -> Any:
        """The hook relay: ``registry.hook.covalent_run(executor=..., task=...)``."""
        return self.manager.hook

    def executor_class(self, short_name: str) -> type[Executor]:
        """The class of an installed executor; a clear error lists what is installed."""
        try:
            return self.executors[short_name].cls
        except KeyError:
            known = ", ".join(sorted(self.executors)) or "none"
            close = difflib.get_close_matches(short_name, list(self.executors), n=1)
            guess = f" Did you mean {close[0]!r}?" if close else ""
            failed = (
                f" Plugins that failed to load: {', '.join(sorted(self.failed))}"
                " (see `covalent-core executors`)."
                if self.failed
                else ""
            )
            raise ExecutorNotFoundError(
                f"no executor named {short_name!r} is installed;{guess} installed: {known}."
                f"{failed} Install its package (e.g. `pip install covalent-{short_name}`)."
            ) from None


@functools.lru_cache(maxsize=1)
def _packages() -> dict[str, list[str]]:
    """Which distributions provide each top-level package (one scan of every installed one)."""
    return importlib.metadata.packages_distributions()


def _dist_of(module_name: str) -> tuple[str, str]:
    top = module_name.split(".")[0]
    for dist in _packages().get(top, []):
        try:
            return dist, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return top, "unknown"


def _build() -> PluginRegistry:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(hookimpls, name="covalent_core.hookimpls")
    registry = PluginRegistry(manager=manager)
    allowed = {n.strip() for n in os.environ.get(ENV_PLUGINS, "").split(",") if n.strip()}
    seen: set[str] = set()
    # The distribution of each plugin, as its entry point says (no scan of every package).
    dists: dict[str, tuple[str, str]] = {}
    for name, module_name in DEFAULT_PLUGINS:
        # The built-in executors: the graph's own nodes need the local one.
        manager.register(importlib.import_module(module_name), name=name)
        seen.add(name)
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            dists[name] = ("covalent-core", importlib.metadata.version("covalent-core"))
    entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    for ep in entry_points:
        if ep.name in seen or (allowed and ep.name not in allowed):
            continue
        seen.add(ep.name)
        try:
            plugin = ep.load()
            manager.register(plugin, name=ep.name)
            if ep.dist is not None:
                dists[ep.name] = (ep.dist.name, ep.dist.version)
        except Exception as exc:
            registry.failed[ep.name] = f"{type(exc).__name__}: {exc}"
            logger.warning("plugin %r (%s) failed to load: %s", ep.name, ep.value, exc)
    for module_name in os.environ.get(ENV_EXTRA, "").split(","):
        module_name = module_name.strip()
        if not module_name or module_name in seen:
            continue
        seen.add(module_name)
        try:
            manager.register(importlib.import_module(module_name), name=module_name)
        except Exception as exc:
            registry.failed[module_name] = f"{type(exc).__name__}: {exc}"
            logger.warning("plugin module %r failed to load: %s", module_name, exc)
    manager.check_pending()
    for plugin_name, plugin in manager.list_name_plugin():
        try:
            found = _executor_classes(plugin)
        except Exception as exc:
            registry.failed[plugin_name] = f"covalent_executor_classes raised {exc!r}"
            continue
        for cls in found:
            usable = isinstance(cls, type) and (
                issubclass(cls, Executor) or is_covalent_executor(cls)
            )
            if not (usable and cls.short_name):
                registry.failed[plugin_name] = (
                    f"{cls!r} is not an Executor subclass with a short_name"
                )
                continue
            package, version = dists.get(plugin_name) or _dist_of(cls.__module__)
            registry.executors[cls.short_name] = ExecutorInfo(
                cls.short_name, cls, plugin_name, package, version
            )
    if os.environ.get(ENV_TRACE):
        trace_log = logging.getLogger("covalent_core.hooks")
        trace_log.setLevel(logging.DEBUG)
        manager.trace.root.setwriter(lambda msg: trace_log.debug(msg.rstrip()))
        manager.enable_tracing()
    return registry


def _executor_classes(plugin: Any) -> list[Any]:
    """A plugin's executor classes: its hook's answer, or Covalent's module convention.

    A module written for Covalent names its executor class in ``EXECUTOR_PLUGIN_NAME`` (or
    ``executor_plugin_name``); such a class runs through the ``covalent`` adapter.
    """
    impl = getattr(plugin, "covalent_executor_classes", None)
    if impl is not None:
        return list(impl() or [])
    for attribute in ("EXECUTOR_PLUGIN_NAME", "executor_plugin_name"):
        class_name = getattr(plugin, attribute, None)
        if isinstance(class_name, str) and hasattr(plugin, class_name):
            return [getattr(plugin, class_name)]
    return []


_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _cached() -> PluginRegistry:
    return _build()


def registry() -> PluginRegistry:
    """The process's plugin registry, built on first use."""
    with _lock:
        return _cached()


def reset_registry() -> None:
    """Forget the registry so the next call rebuilds it (after installing a plugin)."""
    with _lock:
        _cached.cache_clear()


def check_executor_sections() -> None:
    """A config section ``[executors.NAME]`` whose NAME is no installed executor's but close
    to one's is a misspelling, and would be silently ignored: say so. Other unknown names
    pass (a Covalent config names executors not installed here, ``dask`` say).

    Only entry points' names are read (nothing imported) unless a name is unknown."""
    sections = config.load_config().get("executors", {})
    names = {name for name, _module in DEFAULT_PLUGINS}
    names |= {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    unknown = [name for name in sections if name not in names]
    if not unknown:
        return
    installed = list(registry().executors)  # a plugin may hold several executors
    for name in unknown:
        close = difflib.get_close_matches(name, installed, n=1, cutoff=0.75)
        if name not in installed and close:
            raise ExecutorNotFoundError(
                f"config file {config.config_path()}: [executors.{name}] names no installed "
                f"executor; did you mean [executors.{close[0]}]? Installed: "
                f"{', '.join(sorted(installed))}"
            )


def resolve_executor(spec: Any) -> tuple[str, dict[str, Any]]:
    """Turn an electron's ``executor=`` (instance, short name or None) into (name, config).

    A short name takes its options from the config file's ``[executors.<name>]`` section; the
    options are validated now, so a typo fails at dispatch rather than when the task runs.
    """
    if spec is None:
        spec = "local"
    if isinstance(spec, tuple):  # already resolved: a parent lattice's (name, options)
        return spec[0], dict(spec[1])
    if is_covalent_executor(spec) and not isinstance(spec, type):
        from .executor.adapter import CovalentExecutorAdapter, adapter_options

        return CovalentExecutorAdapter.short_name, adapter_options(spec)
    if isinstance(spec, Executor):
        return type(spec).short_name, spec.config
    if isinstance(spec, str):
        cls = registry().executor_class(spec)
        options = config.executor_defaults(spec)
        try:
            instance = cls(**options)
        except (ExecutorConfigError, TypeError) as exc:
            raise ExecutorConfigError(
                f"{exc} (from [executors.{spec}] in {config.config_path()})"
            ) from None
        if is_covalent_executor(instance):
            return resolve_executor(instance)
        return spec, instance.config
    raise ExecutorConfigError(
        f"executor must be an Executor instance or an installed executor's short name, "
        f"not {spec!r}; installed: {', '.join(sorted(registry().executors))}"
    )


def executor_spec_json(spec: Any) -> tuple[str | None, dict[str, Any]]:
    """An executor given as an instance, a short name or a ``(name, options)`` pair, as JSON."""
    if isinstance(spec, Executor):
        return type(spec).short_name, spec.config
    if isinstance(spec, tuple):
        return spec[0], dict(spec[1])
    return (spec if isinstance(spec, str) else None), {}


def executor_from_json(name: str | None, data: dict[str, Any]) -> Any:
    """The inverse of :func:`executor_spec_json`: a short name, a ``(name, options)`` pair."""
    if not name:
        return None
    return (name, data) if data else name
