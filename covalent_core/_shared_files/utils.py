"""The helpers of Covalent's ``covalent._shared_files.utils`` that workflows and plugins call:
binding a call's arguments, a function's source, Slurm-style time strings, server URLs."""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

from .._workflow.binding import named_params
from ..config import get_config


def get_named_params(
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(named_args, named_kwargs)``: a call's arguments by parameter name, as Covalent binds
    them (``arg[i]`` for ``*args``)."""
    return named_params(func, tuple(args), dict(kwargs))


def get_serialized_function_str(function: Any) -> str:
    """The source of ``function`` with its decorators (a lattice's or electron's function),
    or a comment saying it could not be read."""
    inner = function
    while hasattr(inner, "workflow_function") or hasattr(inner, "function"):
        inner = getattr(inner, "workflow_function", None) or inner.function
    try:
        return inspect.getsource(inner)
    except (OSError, TypeError):
        return f"# {getattr(function, '__name__', function)} was not inspectable"


def reformat(t: int) -> str:
    """Two digits at least: 7 -> "07"."""
    return f"{t:02d}"


def get_time(time_delta: timedelta) -> str:
    """A duration as ``D-HH:MM:SS`` (days unpadded beyond two digits)."""
    seconds = time_delta.seconds
    return (
        f"{reformat(time_delta.days)}-{reformat(seconds // 3600)}:"
        f"{reformat(seconds // 60 % 60)}:{reformat(seconds % 60)}"
    )


def get_timedelta(time_limit: str) -> timedelta:
    """``D-HH:MM:SS`` as a duration."""
    days, clock = time_limit.split("-", 1)
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return timedelta(days=int(days), hours=hours, minutes=minutes, seconds=seconds)


def format_server_url(hostname: str | None = None, port: int | None = None) -> str:
    """``http(s)://host:port`` from the given or configured dispatcher address and port
    (Covalent's server; covalent-core has none, so this only builds the text)."""
    host = hostname if hostname is not None else str(get_config("dispatcher.address"))
    number = int(port if port is not None else get_config("dispatcher.port"))
    if not host.startswith("http"):
        host = f"{'https' if number == 443 else 'http'}://{host}"
    scheme, _, rest = host.partition("://")
    netloc, _, path = rest.partition("/")
    if number not in (80, 443):
        netloc = f"{netloc}:{number}"
    return f"{scheme}://{netloc}/{path}".rstrip("/")


def get_ui_url(path: str) -> str:
    """The configured user interface's address followed by ``path``."""
    address = get_config("user_interface.address")
    return f"http://{address}:{get_config('user_interface.port')}{path}"


__all__ = [
    "format_server_url",
    "get_named_params",
    "get_serialized_function_str",
    "get_time",
    "get_timedelta",
    "get_ui_url",
    "reformat",
]
