"""The programming model: ``@electron``, ``@lattice``, ``wait``, and building a transport graph.

Inside a lattice being built, calling an electron adds a node instead of running the function;
outside one, an electron is a plain function call. Node ids follow Covalent: an electron call
adds its own node first, then, for each argument in order (positional, then keyword), a
parameter node for a plain value or a collection node for a list or dict.
"""

from __future__ import annotations

import contextvars
import functools
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .graph import (
    DICT_PREFIX,
    KIND_COLLECTION,
    KIND_ELECTRON,
    KIND_PARAMETER,
    KIND_SUBLATTICE,
    LIST_PREFIX,
    SUBLATTICE_PREFIX,
    TransportGraph,
    parameter_name,
)

_building: contextvars.ContextVar[_Build | None] = contextvars.ContextVar(
    "covalent_core_building", default=None
)


@dataclass
class _Build:
    graph: TransportGraph
    executor: Any


@dataclass(frozen=True)
class NodeRef:
    """Stands for a node's output inside a lattice's stored return value."""

    node_id: int


def build_list(*items: Any) -> list[Any]:
    """Function of a list collection node."""
    return list(items)


def build_dict(keys: tuple[Any, ...], *values: Any) -> dict[Any, Any]:
    """Function of a dict collection node (its keys are bound when the graph is built)."""
    return dict(zip(keys, values, strict=True))


class Electron:
    """A task: a function plus how to run it. Returned by :func:`electron`."""

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        executor: Any = None,
        timeout: float | None = None,
        node_id: int | None = None,
    ) -> None:
        self.function = function
        self.executor = executor
        self.timeout = timeout
        self.node_id = node_id
        if node_id is None:
            functools.update_wrapper(self, function, updated=())

    @property
    def _name(self) -> str:
        return getattr(self.function, "__name__", type(self.function).__name__)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        build = _building.get()
        if build is None:
            return self.function(*args, **kwargs)
        graph = build.graph
        executor = self.executor if self.executor is not None else build.executor
        if isinstance(self.function, Lattice):
            node_id = graph.add_node(
                SUBLATTICE_PREFIX + self.function.name,
                KIND_SUBLATTICE,
                function=self.function,
                executor=executor,
                timeout=self.timeout,
            )
        else:
            node_id = graph.add_node(
                self._name,
                KIND_ELECTRON,
                function=self.function,
                executor=executor,
                timeout=self.timeout,
            )
        for index, value in enumerate(args):
            _connect(graph, node_id, value, "arg", index, None, executor)
        for key, value in kwargs.items():
            _connect(graph, node_id, value, "kwarg", None, key, executor)
        return Electron(
            self.function, executor=self.executor, timeout=self.timeout, node_id=node_id
        )

    # Operations on an electron's output inside a lattice become nodes of their own.
    def _op(self, function: Callable[..., Any], name: str, *args: Any) -> Electron:
        function = _named(function, name)
        # Indexing and arithmetic on outputs are trivial: they always run locally.
        return Electron(function, executor="local")(*args)

    def __getitem__(self, key: Any) -> Electron:
        if _building.get() is None or self.node_id is None:
            raise TypeError("an electron can only be indexed inside a lattice")
        return self._op(operator.getitem, f":{self._name}.__getitem__", self, key)

    def __getattr__(self, attr: str) -> Electron:
        if attr.startswith("__") or _building.get() is None or self.node_id is None:
            raise AttributeError(attr)
        return self._op(getattr, f":{self._name}.__getattr__", self, attr)

    def __iter__(self) -> Any:
        raise TypeError(
            f"the output of {self._name!r} cannot be unpacked or iterated while the lattice is "
            "being built; index it instead (out[0], out[1])"
        )

    def __add__(self, other: Any) -> Electron:
        return self._op(operator.add, f"{self._name}_+_", self, other)

    def __radd__(self, other: Any) -> Electron:
        return self._op(operator.add, f"_+_{self._name}", other, self)

    def __sub__(self, other: Any) -> Electron:
        return self._op(operator.sub, f"{self._name}_-_", self, other)

    def __rsub__(self, other: Any) -> Electron:
        return self._op(operator.sub, f"_-_{self._name}", other, self)

    def __mul__(self, other: Any) -> Electron:
        return self._op(operator.mul, f"{self._name}_*_", self, other)

    def __rmul__(self, other: Any) -> Electron:
        return self._op(operator.mul, f"_*_{self._name}", other, self)

    def __truediv__(self, other: Any) -> Electron:
        return self._op(operator.truediv, f"{self._name}_/_", self, other)

    def __rtruediv__(self, other: Any) -> Electron:
        return self._op(operator.truediv, f"_/_{self._name}", other, self)

    def __repr__(self) -> str:
        where = f" node {self.node_id}" if self.node_id is not None else ""
        return f"<Electron {self._name}{where}>"

    def __reduce__(self) -> Any:
        return (Electron, (self.function,), {"executor": self.executor, "timeout": self.timeout})

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.executor = state["executor"]
        self.timeout = state["timeout"]
        self.node_id = None


def _named(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    def op(*args: Any) -> Any:
        return function(*args)

    op.__name__ = op.__qualname__ = name
    return op


def _connect(
    graph: TransportGraph,
    child: int,
    value: Any,
    param_type: str,
    arg_index: int | None,
    param_name: str | None,
    executor: Any,
) -> None:
    """Connect one argument of ``child``: an edge from an electron, else a new node."""
    if isinstance(value, Electron) and value.node_id is not None:
        graph.add_edge(value.node_id, child, param_type, arg_index=arg_index, param_name=param_name)
        return
    where = f"argument {param_name or arg_index!s} of node {child} ({graph.nodes[child].name})"
    if isinstance(value, (list, dict)):
        is_list = isinstance(value, list)
        items = list(enumerate(value)) if is_list else list(value.items())
        function = build_list if is_list else functools.partial(build_dict, tuple(value))
        node_id = graph.add_node(
            LIST_PREFIX if is_list else DICT_PREFIX,
            KIND_COLLECTION,
            function=function,
            executor="local",
            label=where,
        )
        for index, (_key, item) in enumerate(items):
            _connect(graph, node_id, item, "arg", index, None, executor)
    else:
        node_id = graph.add_node(parameter_name(value), KIND_PARAMETER, value=value, label=where)
    graph.add_edge(node_id, child, param_type, arg_index=arg_index, param_name=param_name)


def _template(value: Any) -> Any:
    """Replace electrons in a lattice's return value with references to their nodes."""
    if isinstance(value, Electron) and value.node_id is not None:
        return NodeRef(value.node_id)
    if isinstance(value, list):
        return [_template(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_template(v) for v in value)
    if isinstance(value, dict):
        return {k: _template(v) for k, v in value.items()}
    return value


def resolve_template(template: Any, outputs: dict[int, Any]) -> Any:
    """Put node outputs back where a lattice's return value referenced them."""
    if isinstance(template, NodeRef):
        return outputs[template.node_id]
    if isinstance(template, list):
        return [resolve_template(v, outputs) for v in template]
    if isinstance(template, tuple) and not hasattr(template, "_fields"):
        return tuple(resolve_template(v, outputs) for v in template)
    if isinstance(template, dict):
        return {k: resolve_template(v, outputs) for k, v in template.items()}
    return template


def template_refs(template: Any) -> set[int]:
    """The node ids a stored return value refers to."""
    if isinstance(template, NodeRef):
        return {template.node_id}
    if isinstance(template, (list, tuple)):
        return set().union(*(template_refs(v) for v in template)) if template else set()
    if isinstance(template, dict):
        return template_refs(list(template.values()))
    return set()


class Lattice:
    """A workflow: a function whose electron calls form a graph. Returned by :func:`lattice`."""

    def __init__(self, function: Callable[..., Any], *, executor: Any = None) -> None:
        self.function = function
        self.executor = executor
        self.name = getattr(function, "__name__", "lattice")
        functools.update_wrapper(self, function, updated=())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # A plain call, as in Covalent: outside a dispatch its electrons run as plain calls;
        # inside another lattice's build its electrons join that graph. To make it one node
        # with a graph of its own, wrap it: ``electron(this_lattice)``.
        return self.function(*args, **kwargs)

    def build_graph(self, *args: Any, **kwargs: Any) -> tuple[TransportGraph, Any]:
        """Run the lattice function in build mode; return its graph and its return template."""
        graph = TransportGraph()
        token = _building.set(_Build(graph=graph, executor=self.executor))
        try:
            returned = self.function(*args, **kwargs)
        finally:
            _building.reset(token)
        return graph, _template(returned)

    def __repr__(self) -> str:
        return f"<Lattice {self.name}>"


def electron(
    _func: Callable[..., Any] | None = None,
    *,
    executor: Any = None,
    timeout: float | None = None,
) -> Any:
    """Make a function a task of a workflow.

    ``executor`` is an executor instance or an installed executor's short name ("local",
    "slurm", ...); ``timeout`` (seconds) stops the task through the cancel machinery when it
    runs longer. A :class:`Lattice` passed here becomes a sublattice.
    """
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")

    def decorate(function: Callable[..., Any]) -> Electron:
        return Electron(function, executor=executor, timeout=timeout)

    return decorate if _func is None else decorate(_func)


def lattice(_func: Callable[..., Any] | None = None, *, executor: Any = None) -> Any:
    """Make a function a workflow; ``executor`` is the default for its electrons."""

    def decorate(function: Callable[..., Any]) -> Lattice:
        return Lattice(function, executor=executor)

    return decorate if _func is None else decorate(_func)


def wait(child: Any, parents: Electron | Iterable[Electron]) -> Any:
    """Make ``child`` start only after ``parents`` finished, without passing their outputs."""
    if _building.get() is None or not isinstance(child, Electron):
        return child
    graph = _building.get().graph  # type: ignore[union-attr]
    parents = [parents] if isinstance(parents, Electron) else list(parents)
    for parent in parents:
        graph.add_edge(parent.node_id, child.node_id, "wait")  # type: ignore[arg-type]
    return child


def is_building() -> bool:
    """True while a lattice function runs to build its graph."""
    return _building.get() is not None


__all__ = [
    "Electron",
    "Lattice",
    "NodeRef",
    "electron",
    "lattice",
    "resolve_template",
    "wait",
]
