"""The programming model: ``@electron``, ``@lattice``, ``wait``, and building a transport graph.

Inside a lattice being built, calling an electron adds a node instead of running the function;
outside one, an electron is a plain function call. Graphs are built node for node as
Covalent 0.240 builds them, so task ids mean the same in both:

* an electron call adds its node, then binds its arguments to the function's signature and
  connects them in that order: positional ones first, then keyword ones in the signature's
  order (``**kwargs`` extras in call order); too many arguments is an error, as in Covalent;
* an argument that is an output becomes an edge; a list, tuple or set becomes an
  ``:electron_list:`` node whose items are its arguments; a dict becomes an
  ``:electron_dict:`` node fed by a list of its keys and a list of its values; anything else
  becomes a ``:parameter:`` node named after ``str(value)``;
* a sublattice (``electron(a_lattice)(...)``) is a node whose first two inputs are the
  lattice and its parent's metadata, then the call's arguments;
* indexing, attributes, unpacking and arithmetic on an output add nodes of their own;
* the lattice's return value feeds a final ``:postprocess:reconstruct`` node, which is the
  dispatch's result; every other electron that it does not reference is waited for.
"""

from __future__ import annotations

import contextvars
import copy
import dis
import functools
import inspect
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..graph import (
    DICT_PREFIX,
    KIND_COLLECTION,
    KIND_ELECTRON,
    KIND_PARAMETER,
    KIND_POSTPROCESS,
    KIND_SUBLATTICE,
    LIST_PREFIX,
    PARAM_ARG,
    PARAM_KWARG,
    POSTPROCESS_NAME,
    SUBLATTICE_PREFIX,
    WAIT_EDGE_NAME,
    TransportGraph,
    parameter_name,
)
from . import graph_tasks
from .binding import function_name, named_params
from .deps import TaskEnvironment, task_environment

if TYPE_CHECKING:
    from .lattice import Lattice

_building: contextvars.ContextVar[_Build | None] = contextvars.ContextVar(
    "covalent_core_building", default=None
)

# Nodes the graph makes for itself (collections, indexing, arithmetic) run on this executor.
INTERNAL_EXECUTOR = "local"


class Workflow:
    """What :class:`~.lattice.Lattice` is: a function that builds a graph of its own. An
    electron made of one is a sublattice."""


@dataclass
class _Build:
    graph: TransportGraph
    lattice: Lattice
    default_executor: Any
    bound: dict[int, Electron] = field(default_factory=dict)
    """Every electron call's result by node id, as Covalent's ``_bound_electrons``."""


class Electron:
    """A task: a function plus how to run it. Returned by :func:`electron`.

    Inside a lattice being built, calling it (or an operation on its output) returns a *bound*
    electron: one that stands for a node's output and has a ``node_id``.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        node_id: int | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        executor: Any = None,
        timeout: float | None = None,
        _fname: str | None = None,
    ) -> None:
        self.function = function
        self.node_id = node_id
        self.metadata: dict[str, Any] = dict(metadata or {})
        if executor is not None:
            self.metadata["executor"] = executor
        if timeout is not None:
            self.metadata["timeout"] = timeout
        # The name Covalent gives this electron's function when naming derived nodes.
        self._fname = _fname or function_name(function)
        if node_id is None:
            functools.update_wrapper(self, function, updated=())  # type: ignore[arg-type]

    # Covalent's metadata accessors.
    def set_metadata(self, name: str, value: Any) -> None:
        """Set one metadata entry (``executor``, ``timeout``, ...)."""
        self.metadata[name] = value

    def get_metadata(self, name: str) -> Any:
        """One metadata entry; ``KeyError`` if it was never set."""
        return self.metadata[name]

    @property
    def executor(self) -> Any:
        """The electron's executor (instance or short name), or None for the lattice's."""
        return self.metadata.get("executor")

    @property
    def timeout(self) -> float | None:
        """Seconds after which the task is stopped, or None."""
        return self.metadata.get("timeout")

    @property
    def task_group_id(self) -> int | None:
        """Covalent's task group: each task is its own group here (packing is per executor)."""
        return self.node_id

    @property
    def packing_tasks(self) -> bool:
        """Covalent's task-packing flag; packing is an executor option here (Slurm ``pack``)."""
        return False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        build = _building.get()
        if build is None:
            return self.function(*args, **kwargs)
        if isinstance(self.function, Workflow):
            return _bind_sublattice(build, self, args, kwargs)
        replacements = build.lattice.replace_electrons
        if self._fname in replacements:  # a redispatch's replace_electrons, as in Covalent
            replacement = replacements.pop(self._fname)
            try:
                if not isinstance(replacement, Electron):
                    replacement = Electron(replacement, metadata=self.metadata)
                return replacement(*args, **kwargs)
            finally:
                replacements[self._fname] = replacement
        metadata = dict(self.metadata)
        if metadata.get("executor") is None:
            metadata["executor"] = build.default_executor
        if metadata.get("hooks") is None:  # none of its own: the lattice's, as in Covalent
            metadata["hooks"] = build.lattice.metadata.get("hooks")
        hooks: TaskEnvironment | None = metadata["hooks"]
        if hooks is not None and hooks.retval_keywords() & kwargs.keys():
            # Given at run time by its call_before calls: not inputs of the node.
            kwargs = {k: v for k, v in kwargs.items() if k not in hooks.retval_keywords()}
        return _bind(build, self.function, args, kwargs, self._fname, KIND_ELECTRON, metadata)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        # A decorated method binds like a function: ``obj.method(x)`` calls it with ``obj``.
        return self if instance is None else types.MethodType(self, instance)

    # -- operations on an output inside a lattice become nodes of their own --------------

    def _derived(self, function: Callable[..., Any], name: str, *args: Any) -> Electron:
        build = _building.get()
        if build is None or self.node_id is None:
            raise TypeError(
                f"{name!r}: an electron's output can be indexed, unpacked or used in arithmetic "
                "only inside a lattice being built"
            )
        return _bind(build, function, args, {}, name, KIND_ELECTRON, _internal_metadata())

    def __getitem__(self, key: Any) -> Electron:
        name = f":{self._fname}.__getitem__"
        return self._derived(graph_tasks.get_item, name, self, key)

    def __getattr__(self, attr: str) -> Electron:
        # Only called for attributes the object lacks; dunders (pickling, copying) stay real.
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        if attr == "keys":
            raise AttributeError(
                "an electron's output has no attribute 'keys' while the lattice is built (it "
                "would clash with dict.keys, as in Covalent); rename that attribute"
            )
        if self.__dict__.get("node_id") is None or _building.get() is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")
        name = f":{self._fname}.__getattr__"
        return self._derived(graph_tasks.get_attr, name, self, attr)

    def __iter__(self) -> Any:
        frame = inspect.currentframe()
        count = _unpacked_count(frame.f_back if frame is not None else None)
        if count is None:
            raise TypeError(
                f"the output of {self._fname!r} can only be unpacked into two or more names "
                "(a, b = out) while the lattice is built: its length is not known yet. Index it "
                "(out[0]) or iterate inside an electron. (Covalent silently builds nothing here.)"
            )
        return iter(
            [
                self._derived(graph_tasks.get_item, f":{self._fname}()[{i}]", self, i)
                for i in range(count)
            ]
        )

    # As in Covalent: int(), float() and complex() of an output are 0 while building.
    def __int__(self) -> int:
        return 0

    def __float__(self) -> float:
        return 0.0

    def __complex__(self) -> complex:
        return 0j

    def __add__(self, other: Any) -> Electron:
        return _arithmetic(self, other, "+")

    def __radd__(self, other: Any) -> Electron:
        return _arithmetic(other, self, "+")

    def __sub__(self, other: Any) -> Electron:
        return _arithmetic(self, other, "-")

    def __rsub__(self, other: Any) -> Electron:
        return _arithmetic(other, self, "-")

    def __mul__(self, other: Any) -> Electron:
        return _arithmetic(self, other, "*")

    def __rmul__(self, other: Any) -> Electron:
        return _arithmetic(self, other, "*")  # Covalent keeps the output first here

    def __truediv__(self, other: Any) -> Electron:
        return _arithmetic(self, other, "/")

    def __rtruediv__(self, other: Any) -> Electron:
        return _arithmetic(other, self, "/")

    def __pow__(self, other: Any) -> Electron:
        return _arithmetic(self, other, "**")

    def wait_for(self, electrons: Electron | Iterable[Electron]) -> Electron:
        """Start this (bound) electron only after ``electrons`` finished; see :func:`wait`."""
        return wait(self, electrons)

    def __hash__(self) -> int:
        # Outputs in a set are ordered by this: by node id, the same every run (Covalent's
        # order follows object addresses).
        if self.node_id is None:
            return object.__hash__(self)
        return hash(("covalent_core.output", self.node_id))

    def __str__(self) -> str:
        # An unbound electron stands for its function, as Covalent's decorated function does.
        return str(self.function) if self.node_id is None else repr(self)

    def __repr__(self) -> str:
        where = f" node {self.node_id}" if self.node_id is not None else ""
        return f"<Electron {self._fname}{where}>"

    def __reduce__(self) -> Any:
        return (_unbound_electron, (self.function, self.metadata))


def _unbound_electron(function: Callable[..., Any], metadata: dict[str, Any]) -> Electron:
    return Electron(function, metadata=metadata)


def _internal_metadata() -> dict[str, Any]:
    return {"executor": INTERNAL_EXECUTOR}


def _unpacked_count(frame: types.FrameType | None) -> int | None:
    """How many names the instruction that asked for an iterator unpacks into (2 or more)."""
    if frame is None:
        return None
    for instruction in dis.get_instructions(frame.f_code):
        if instruction.offset == frame.f_lasti:
            if instruction.opname == "UNPACK_SEQUENCE" and instruction.arg >= 2:
                return int(instruction.arg)
            return None
    return None


def _operand_name(operand: Any) -> str:
    if isinstance(operand, Electron):
        return operand._fname
    function = getattr(operand, "function", None)
    return function_name(function) if function else f"{operand}"


def _arithmetic(left: Any, right: Any, op: str) -> Electron:
    build = _building.get()
    if build is None:
        raise TypeError(f"arithmetic ({op}) on an electron works only inside a lattice being built")
    name = f"{_operand_name(left)}_{op}_{_operand_name(right)}"
    function = functools.partial(graph_tasks.binary_op, op=op)
    metadata = {"executor": build.lattice.metadata.get("workflow_executor") or INTERNAL_EXECUTOR}
    return _bind(
        build, function, (), {"arg_1": left, "arg_2": right}, name, KIND_ELECTRON, metadata
    )


def _bind(
    build: _Build,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    kind: str,
    metadata: dict[str, Any],
    fname: str | None = None,
) -> Electron:
    """Add a node for ``function(*args, **kwargs)``, connect its arguments, return it bound."""
    named_args, named_kwargs = named_params(function, args, kwargs)
    node_id = build.graph.add_node(name, kind, function=function, metadata=metadata)
    for index, (param, value) in enumerate(named_args.items()):
        _connect(build, node_id, param, value, PARAM_ARG, index)
    for param, value in named_kwargs.items():
        _connect(build, node_id, param, value, PARAM_KWARG, None)
    bound = Electron(function, node_id=node_id, metadata=metadata, _fname=fname or name)
    build.bound[node_id] = bound
    return bound


def _connect(
    build: _Build, child: int, param: str, value: Any, param_type: str, arg_index: int | None
) -> None:
    """Connect one argument of ``child``: an edge from an output, else the nodes for a value."""
    if isinstance(value, Electron) and value.node_id is not None:
        parent = value.node_id
    elif isinstance(value, (list, tuple, set)):
        parent = _bind(
            build,
            graph_tasks.auto_list,
            tuple(value),
            {},
            LIST_PREFIX,
            KIND_COLLECTION,
            _internal_metadata(),
            fname="_auto_list_node",
        ).node_id
    elif isinstance(value, dict):
        parent = _bind(
            build,
            graph_tasks.auto_dict,
            (list(value.keys()), list(value.values())),
            {},
            DICT_PREFIX,
            KIND_COLLECTION,
            _internal_metadata(),
            fname="_auto_dict_node",
        ).node_id
    else:
        parent = build.graph.add_node(parameter_name(value), KIND_PARAMETER, value=value)
    build.graph.add_edge(parent, child, param, param_type, arg_index)


def _bind_sublattice(
    build: _Build, electron: Electron, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Electron:
    sub: Lattice = electron.function
    parent_hooks = build.lattice.metadata.get("hooks")
    if parent_hooks is not None and sub.metadata.get("hooks") is None:
        # As in Covalent, a sublattice without hooks of its own takes its parent's.
        sub = copy.copy(sub)
        sub.metadata = {**sub.metadata, "hooks": parent_hooks}
    metadata = {"executor": None, "timeout": electron.metadata.get("timeout")}
    return _bind(
        build,
        graph_tasks.sublattice_call,
        (sub, build.lattice.metadata_json(build.default_executor), *args),
        kwargs,
        SUBLATTICE_PREFIX + sub.__name__,
        KIND_SUBLATTICE,
        metadata,
        fname="_build_sublattice_graph",
    )


def _retval_node_ids(retval: Any) -> set[int]:
    """The node ids a lattice's return value refers to, collected as Covalent collects them."""
    node_ids: list[int] = []
    if isinstance(retval, Electron) and retval.node_id is not None:
        node_ids.append(retval.node_id)
    elif isinstance(retval, (list, tuple, set)):
        for item in retval:
            node_ids.extend(_retval_node_ids(item))
    elif isinstance(retval, dict):
        for item in retval.values():
            node_ids.extend(_retval_node_ids(item))
    return set(node_ids)


def _add_postprocess(build: _Build, retval: Any) -> None:
    """The final node: it takes the return value and waits for every unreferenced electron."""
    refs = _retval_node_ids(retval)
    before = dict(build.bound)
    referenced = {f"node:{node_id}": before[node_id] for node_id in refs}
    metadata = {"executor": build.lattice.metadata.get("workflow_executor") or INTERNAL_EXECUTOR}
    pp = _bind(
        build,
        graph_tasks.reconstruct,
        (retval,),
        referenced,
        POSTPROCESS_NAME,
        KIND_POSTPROCESS,
        metadata,
        fname="_postprocess_recursively",
    )
    for node_id in before:
        if node_id not in refs:
            build.graph.add_edge(node_id, pp.node_id, WAIT_EDGE_NAME)  # type: ignore[arg-type]


def electron(
    _func: Callable[..., Any] | None = None,
    *,
    executor: Any = None,
    backend: Any = None,
    timeout: float | None = None,
    metadata: dict[str, Any] | None = None,
    deps_bash: Any = None,
    deps_pip: Any = None,
    deps_module: Any = None,
    call_before: Any = None,
    call_after: Any = None,
    files: Any = None,
) -> Any:
    """Make a function a task of a workflow.

    ``executor`` is an executor instance or an installed executor's short name ("local",
    "slurm", ...); ``backend`` is Covalent's old name for it. ``timeout`` (seconds) stops the
    task through the cancel machinery when it runs longer. A :class:`Lattice` passed here
    becomes a sublattice. ``deps_bash``, ``deps_pip``, ``deps_module``, ``call_before``,
    ``call_after`` and ``files`` prepare where the task runs (:mod:`covalent_core._workflow.deps`,
    :mod:`covalent_core._file_transfer.file_transfer`).
    """
    if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    options = dict(metadata or {})
    if executor is None:
        executor = backend
    if executor is not None:
        options["executor"] = executor
    if timeout is not None:
        options["timeout"] = timeout
    hooks = task_environment(
        deps_bash=deps_bash,
        deps_pip=deps_pip,
        deps_module=deps_module,
        call_before=call_before,
        call_after=call_after,
        files=files,
    )
    if hooks is not None:
        options["hooks"] = hooks

    def decorate(function: Callable[..., Any]) -> Electron:
        return Electron(function, metadata=options)

    return decorate if _func is None else decorate(_func)


def wait(child: Any, parents: Electron | Iterable[Electron]) -> Any:
    """Make ``child`` start only after ``parents`` finished, without passing their outputs."""
    build = _building.get()
    if build is None:
        return child
    if not isinstance(child, Electron) or child.node_id is None:
        raise TypeError(f"wait() takes an electron's output as its child, not {child!r}")
    parents = [parents] if isinstance(parents, Electron) else list(parents)
    for parent in parents:
        if not isinstance(parent, Electron) or parent.node_id is None:
            raise TypeError(f"wait() takes electrons' outputs as parents, not {parent!r}")
        build.graph.add_edge(parent.node_id, child.node_id, WAIT_EDGE_NAME)
    return Electron(
        child.function, node_id=child.node_id, metadata=child.metadata, _fname=child._fname
    )


__all__ = [
    "Electron",
    "Workflow",
    "electron",
    "wait",
]
