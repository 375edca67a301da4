"""Binding a call's arguments to a function's parameters, the way Covalent names graph edges."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from ..errors import GraphBuildError


def _anything(*args: Any, **kwargs: Any) -> None:
    """The signature assumed for callables that have none (some builtins)."""


def function_name(function: Any) -> str:
    """A callable's name: ``__name__``, the wrapped function's for a partial, else its type's."""
    while isinstance(function, functools.partial):
        function = function.func
    name = getattr(function, "__name__", None)
    return name if isinstance(name, str) else type(function).__name__


def named_params(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Bind a call's arguments to ``function``'s parameters the way Covalent does.

    Returns ``(named_args, named_kwargs)`` in the order their nodes are made: positional
    arguments by parameter name (``arg[i]`` for ``*args``), then keyword arguments in the
    signature's order. Raises :class:`GraphBuildError` for arguments the function cannot take.
    """
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin without a signature takes anything
        parameters = inspect.signature(_anything).parameters
    named_args: dict[str, Any] = {}
    named_kwargs: dict[str, Any] = {}
    for index, (name, param) in enumerate(parameters.items()):
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            if name in kwargs:
                named_kwargs[name] = kwargs[name]
            elif index < len(args):
                named_args[name] = args[index]
        elif param.kind is param.VAR_POSITIONAL:
            for i in range(index, len(args)):
                named_args[f"arg[{i}]"] = args[i]
        elif param.kind is param.VAR_KEYWORD:
            named_kwargs.update((k, v) for k, v in kwargs.items() if k != name)
        elif param.kind is param.KEYWORD_ONLY and name in kwargs:
            named_kwargs[name] = kwargs[name]
    what = function_name(function)
    if len(args) > len(named_args):
        raise GraphBuildError(
            f"{what}() got too many positional arguments: it takes {len(named_args)} here, "
            f"{len(args)} were given (Covalent refuses this call too); check the call in the "
            "lattice."
        )
    if len(kwargs) > len(named_kwargs):
        extra = ", ".join(sorted(set(kwargs) - set(named_kwargs)))
        raise GraphBuildError(
            f"{what}() got unexpected keyword arguments: {extra}. Check the call in the lattice."
        )
    return named_args, named_kwargs
