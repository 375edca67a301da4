"""A task's environment, declared as Covalent declares it.

``DepsBash``, ``DepsPip``, ``DepsCall`` and ``DepsModule``, and the ``deps_bash``, ``deps_pip``,
``deps_module``, ``call_before``, ``call_after`` and ``files``
(:mod:`covalent_core._file_transfer.file_transfer`) arguments of ``electron`` and ``lattice``.
They become *steps* (plain data: see :func:`covalent_core.sdk.runner.run_step`) that
the runner performs where the task runs, on every executor, in the task's own process and its
children: a cancel stops a long ``pip install`` or ``sleep`` as it stops the task. In
Covalent's order: the shell commands, then the pip install, then each ``call_before``; the
function; then each ``call_after`` (only when the function returned).

A lattice's declarations apply to each of its electrons that declares none of its own, as in
Covalent.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from .._file_transfer.file_transfer import Dumps, FileTransfer, Order
from ..sdk.runner import FILES_KEYWORD
from .binding import function_name
from .transportable_object import TransportableObject


class Deps:
    """Something to prepare where a task runs. Subclasses say what (:meth:`step`)."""

    def step(self, dumps: Dumps, role: str) -> dict[str, Any] | None:
        """The runner's step for this declaration (None: nothing to run)."""
        raise NotImplementedError

    def short_name(self) -> str:
        """Covalent's name for the kind of dependency (``depsbash``, ``depspip``, ...)."""
        return type(self).__name__.lower()

    def to_dict(self) -> dict[str, Any]:
        """This declaration as data, in Covalent's layout (``type``, ``short_name``,
        ``attributes``); a value that is not plain data (a function, its arguments) as a
        :class:`TransportableObject`'s dict."""
        return {
            "type": type(self).__name__,
            "short_name": "covalent",
            "attributes": {k: _as_data(v) for k, v in vars(self).items()},
        }

    def from_dict(self, object_dict: dict[str, Any]) -> Deps:
        """Take the attributes of a :meth:`to_dict` document; returns this object."""
        for name, value in (object_dict or {}).get("attributes", {}).items():
            setattr(self, name, _from_data(value))
        return self


def _as_data(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return TransportableObject(value).to_dict()
    return value


def _from_data(value: Any) -> Any:
    if isinstance(value, dict) and value.get("type") == "TransportableObject":
        return TransportableObject.from_dict(value).get_deserialized()
    return value


def _items(value: Any, one: type | tuple[type, ...], what: str, kind: str) -> list[Any]:
    """``value`` as a list: one item of type ``one``, or an iterable of them."""
    if isinstance(value, one):
        return [value]
    try:
        items = list(value or [])
    except TypeError:
        raise TypeError(f"{what} takes {kind} (or a list of them), not {value!r}") from None
    for item in items:
        if not isinstance(item, one):
            raise TypeError(f"{what} takes {kind} (or a list of them), not {item!r}")
    return items


def _strings(value: Any, what: str) -> list[str]:
    return _items(value, str, what, "strings")


class DepsBash(Deps):
    """Shell commands run before the task, each as ``bash -c COMMAND`` where the task runs.

    A command that exits with a non-zero status fails the task before it starts; the node's
    error names the command and carries its exit status and output.
    """

    def __init__(self, commands: list[str] | str = ()) -> None:  # type: ignore[assignment]
        self.commands = _strings(commands, "DepsBash")

    def step(self, dumps: Dumps, role: str) -> dict[str, Any] | None:
        """Run the commands in order."""
        if not self.commands:
            return None
        return {"kind": "bash", "label": "DepsBash", "commands": list(self.commands)}

    def __repr__(self) -> str:
        return f"DepsBash({self.commands!r})"


class DepsPip(Deps):
    """Packages ``pip install``-ed where the task runs, before it starts.

    ``packages``: requirement strings (``"numpy==1.26"``; words separated by spaces are
    separate arguments to pip, as in Covalent, so ``"--index-url URL pkg"`` works);
    ``reqs_path``: a requirements file, read now (it need not exist where the task runs).
    They go into the interpreter the task runs in; the local executor with
    ``isolate_deps=True`` installs them into a directory of the dispatch's own instead.
    """

    def __init__(self, packages: list[str] | str = (), reqs_path: str = "") -> None:  # type: ignore[assignment]
        self.packages = _strings(packages, "DepsPip")
        self.reqs_path = reqs_path
        self.requirements_content = ""
        if reqs_path:
            try:
                with open(reqs_path, encoding="utf-8") as fh:
                    self.requirements_content = fh.read()
            except OSError as exc:
                raise FileNotFoundError(
                    f"DepsPip(reqs_path={reqs_path!r}): cannot read the requirements file "
                    f"({exc.strerror or exc}); give an existing file, or list the packages"
                ) from None

    def step(self, dumps: Dumps, role: str) -> dict[str, Any] | None:
        """One ``pip install`` of the packages or of the requirements file's content."""
        if not self.packages and not self.requirements_content:
            return None
        return {
            "kind": "pip",
            "label": "DepsPip",
            "packages": " ".join(self.packages).split(),
            "requirements": self.requirements_content,
        }

    def __repr__(self) -> str:
        if self.reqs_path:
            return f"DepsPip(reqs_path={self.reqs_path!r})"
        return f"DepsPip({self.packages!r})"


class DepsCall(Deps):
    """A Python call made where the task runs: ``func(*args, **kwargs)``.

    Given as ``call_before``, it runs before the task; with ``retval_keyword``, its return
    value is passed to the task as that keyword argument (give the task's parameter a default,
    as in Covalent). Given as ``call_after``, it runs after the task returned.
    """

    def __init__(
        self,
        func: Callable[..., Any] | None = None,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        retval_keyword: str = "",
        override_reserved_retval_keys: bool = False,
    ) -> None:
        if func is not None and not callable(func):
            raise TypeError(f"DepsCall takes a callable as func, not {func!r}")
        if not isinstance(retval_keyword, str):
            raise TypeError(f"DepsCall's retval_keyword names a parameter, not {retval_keyword!r}")
        if retval_keyword == FILES_KEYWORD and not override_reserved_retval_keys:
            raise ValueError(
                f"DepsCall: retval_keyword {FILES_KEYWORD!r} is reserved for the paths of file "
                "transfers; choose another name"
            )
        self.func = func
        self.args = list(args or [])
        self.kwargs = dict(kwargs or {})
        self.retval_keyword = retval_keyword

    def step(self, dumps: Dumps, role: str) -> dict[str, Any] | None:
        """Call the function; its value goes to ``retval_keyword`` when one is set."""
        if self.func is None:
            return None
        label = f"{role} {function_name(self.func)}()"
        return {
            "kind": "call",
            "label": label,
            "function": dumps(self.func, label),
            "args": dumps(self.args, f"the arguments of {label}"),
            "kwargs": dumps(self.kwargs, f"the keyword arguments of {label}"),
            "retval_keyword": self.retval_keyword,
        }

    def __repr__(self) -> str:
        name = function_name(self.func) if self.func is not None else None
        return f"DepsCall({name}, retval_keyword={self.retval_keyword!r})"


class DepsModule(DepsCall):
    """A module of the user's that the task's code uses but the resource does not have.

    The task's function (and its hooks) are pickled with the module's code included rather
    than as a reference to it, as Covalent does; nothing runs on the resource.
    """

    def __init__(self, module: str | types.ModuleType) -> None:
        if isinstance(module, str):
            try:
                module = importlib.import_module(module)
            except ImportError as exc:
                raise ImportError(
                    f"DepsModule({module!r}): the module cannot be imported here ({exc}); it "
                    "must be importable where the workflow is dispatched"
                ) from None
        if not isinstance(module, types.ModuleType):
            raise TypeError(f"DepsModule takes a module or its name, not {module!r}")
        super().__init__()
        self.module = module

    def step(self, dumps: Dumps, role: str) -> dict[str, Any] | None:
        """None: the module travels inside the pickled function."""
        return None

    def short_name(self) -> str:
        return "depsmodule"

    def __repr__(self) -> str:
        return f"DepsModule({self.module.__name__!r})"


def _calls(value: Any, what: str) -> list[Deps]:
    """``call_before``/``call_after``: any deps objects, one or a list, as in Covalent (its
    pip-deps how-to passes ``call_before=[DepsPip(...)]``); they run in the order given."""
    return _items(value, Deps, what, "deps objects (DepsCall, DepsBash, DepsPip)")


def _modules(value: Any) -> list[DepsModule]:
    one = (str, types.ModuleType, DepsModule)
    items = _items(value, one, "deps_module", "modules, their names or DepsModule objects")
    return [item if isinstance(item, DepsModule) else DepsModule(item) for item in items]


@dataclass
class TaskEnvironment:
    """Everything declared about where one task runs; see the module's docstring."""

    bash: DepsBash | None = None
    pip: DepsPip | None = None
    modules: list[DepsModule] = field(default_factory=list)
    call_before: list[Deps] = field(default_factory=list)
    call_after: list[Deps] = field(default_factory=list)
    files: list[FileTransfer] = field(default_factory=list)
    files_keyword: str = FILES_KEYWORD
    """The parameter the task gets its transfers' paths in ("": none, as for leptons)."""

    def covalent_hooks(self) -> dict[str, Any]:
        """Covalent's layout of a node's ``metadata["hooks"]``: ``deps`` (``bash``, ``pip``),
        ``call_before`` and ``call_after``, each declaration as :meth:`Deps.to_dict`."""
        deps = {
            name: dep.to_dict() for name, dep in (("bash", self.bash), ("pip", self.pip)) if dep
        }
        return {
            "deps": deps,
            "call_before": [call.to_dict() for call in self.call_before],
            "call_after": [call.to_dict() for call in self.call_after],
        }

    def retval_keywords(self) -> set[str]:
        """Parameters the task receives from its ``call_before`` calls (and ``files``)."""
        names = {getattr(call, "retval_keyword", "") for call in self.call_before} - {""}
        return names | ({self.files_keyword} if self.files and self.files_keyword else set())

    def steps(self, dumps: Dumps) -> dict[str, list[dict[str, Any]]]:
        """The runner's steps, ``before`` and ``after`` the function, pickled with ``dumps``:
        shell commands, pip, each file transfer's paths (and the transfer, when it comes
        first), ``call_before``; then the later transfers and ``call_after``."""
        before: list[dict[str, Any] | None] = [
            self.bash.step(dumps, "DepsBash") if self.bash else None,
            self.pip.step(dumps, "DepsPip") if self.pip else None,
        ]
        later = []
        for transfer in self.files:
            prepare, move = transfer.steps(dumps, self.files_keyword)
            before.append(prepare)
            (later if transfer.order is Order.AFTER else before).append(move)
        before += [call.step(dumps, "call_before") for call in self.call_before]
        after = later + [call.step(dumps, "call_after") for call in self.call_after]
        return {
            "before": [step for step in before if step],
            "after": [step for step in after if step],
        }

    @contextlib.contextmanager
    def modules_by_value(self) -> Iterator[None]:
        """While inside, cloudpickle includes the code of the ``DepsModule`` modules."""
        registered = []
        try:
            for dep in self.modules:
                with contextlib.suppress(ValueError):  # already registered
                    cloudpickle.register_pickle_by_value(dep.module)
                    registered.append(dep.module)
            yield
        finally:
            for module in registered:
                cloudpickle.unregister_pickle_by_value(module)


def task_environment(
    *,
    deps_bash: DepsBash | list[str] | str | None = None,
    deps_pip: DepsPip | list[str] | None = None,
    deps_module: Any = None,
    call_before: Deps | list[Deps] | None = None,
    call_after: Deps | list[Deps] | None = None,
    files: FileTransfer | list[FileTransfer] | None = None,
) -> TaskEnvironment | None:
    """The environment declared by ``electron``'s or ``lattice``'s arguments (None: none)."""
    if deps_bash is not None and not isinstance(deps_bash, DepsBash):
        deps_bash = DepsBash(deps_bash)
    if deps_pip is not None and not isinstance(deps_pip, DepsPip):
        deps_pip = DepsPip(deps_pip)
    environment = TaskEnvironment(
        bash=deps_bash or None,
        pip=deps_pip or None,
        modules=_modules(deps_module) if deps_module else [],
        call_before=_calls(call_before, "call_before"),
        call_after=_calls(call_after, "call_after"),
        files=_items(files, FileTransfer, "files", "FileTransfer objects"),
    )
    if environment == TaskEnvironment():
        return None
    return environment


__all__ = ["DepsBash", "DepsCall", "DepsModule", "DepsPip", "TaskEnvironment", "task_environment"]
