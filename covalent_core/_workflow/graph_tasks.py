"""The functions that the graph's own nodes run: collections, indexing, arithmetic, the result.

Their parameter names are Covalent's, because edges are named after the parameter they feed
(``arg[0]``, ``keys``/``values``, ``e``/``key``, ``arg_1``/``arg_2``, ``retval``). They are
importable module functions, so a task payload refers to them instead of carrying their code.
"""

from __future__ import annotations

import operator
from typing import Any

OPERATORS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
}


def auto_list(*args: Any, **kwargs: Any) -> list[Any]:
    """A list, tuple or set of values and outputs: always a list, as in Covalent."""
    return list(args)


def auto_dict(keys: list[Any], values: list[Any]) -> dict[Any, Any]:
    """A dict of values and outputs, from its keys and values (each a list node)."""
    return {keys[i]: values[i] for i in range(len(keys))}


def get_item(e: Any, key: Any) -> Any:
    """``output[key]``, and each item of ``a, b = output``."""
    return e[key]


def get_attr(e: Any, attr: str) -> Any:
    """``output.attr``."""
    return getattr(e, attr)


def binary_op(arg_1: Any, arg_2: Any, *, op: str) -> Any:
    """``arg_1 <op> arg_2`` for an arithmetic node (``op`` is bound when the node is made)."""
    return OPERATORS[op](arg_1, arg_2)


def reconstruct(retval: Any, **referenced_outputs: Any) -> Any:
    """The lattice's return value; its outputs arrive already in place through ``retval``."""
    return retval


def sublattice_call(sub: Any, json_parent_metadata: str, *args: Any, **kwargs: Any) -> Any:
    """The signature a sublattice node's inputs are bound to; the dispatcher builds it."""
    raise RuntimeError("a sublattice node is built by the dispatcher, not called")
