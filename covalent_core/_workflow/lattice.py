"""``@lattice`` and :class:`Lattice`: a workflow function, built into a transport graph when
it is dispatched (node for node as Covalent 0.240 builds it; see :mod:`.electron`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from ..deadlines import deadline_at
from ..graph import TransportGraph
from .binding import function_name, named_params
from .deps import TaskEnvironment, task_environment
from .electron import Workflow, _add_postprocess, _Build, _building


class Lattice(Workflow):
    """A workflow: a function whose electron calls form a graph. Returned by :func:`lattice`."""

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        executor: Any = None,
        workflow_executor: Any = None,
        hooks: TaskEnvironment | None = None,
        triggers: list[Any] | None = None,
        deadline: Any = None,
    ) -> None:
        self.workflow_function = function
        self.__name__ = function_name(function)
        self.__doc__ = getattr(function, "__doc__", None)
        self.__wrapped__ = function
        self.metadata: dict[str, Any] = {
            "executor": executor,
            "workflow_executor": workflow_executor,
            "hooks": hooks,
            "triggers": triggers,
            "deadline": deadline,
        }
        self.replace_electrons: dict[str, Any] = {}
        """Electrons to use instead of those of these names while building (redispatch)."""
        self.transport_graph = TransportGraph()
        self.inputs: tuple[tuple[Any, ...], dict[str, Any]] | None = None

    @property
    def function(self) -> Callable[..., Any]:
        """The workflow function."""
        return self.workflow_function

    @property
    def name(self) -> str:
        """The workflow function's name."""
        return self.__name__

    @property
    def executor(self) -> Any:
        """The default executor of the lattice's electrons."""
        return self.metadata.get("executor")

    def set_metadata(self, name: str, value: Any) -> None:
        """Set one metadata entry (``executor``, ``workflow_executor``)."""
        self.metadata[name] = value

    def get_metadata(self, name: str) -> Any:
        """One metadata entry, or None."""
        return self.metadata.get(name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # A plain call, as in Covalent: outside a dispatch its electrons run as plain calls;
        # inside another lattice's build its electrons join that graph. To make it one node
        # with a graph of its own, wrap it: ``electron(this_lattice)``.
        return self.workflow_function(*args, **kwargs)

    def build_graph(
        self, *args: Any, _default_executor: Any = None, **kwargs: Any
    ) -> TransportGraph:
        """Run the workflow function in build mode; the graph is also ``self.transport_graph``."""
        named_args, named_kwargs = named_params(self.workflow_function, args, kwargs)
        executor = self.metadata.get("executor")
        build = _Build(
            graph=TransportGraph(),
            lattice=self,
            default_executor=executor if executor is not None else _default_executor,
        )
        token = _building.set(build)
        try:
            retval = self.workflow_function(*named_args.values(), **named_kwargs)
            _add_postprocess(build, retval)
        finally:
            _building.reset(token)
        self.transport_graph = build.graph
        self.inputs = (args, kwargs)
        return build.graph

    def draw(self, *args: Any, path: str | None = None, **kwargs: Any) -> Any:
        """Draw the graph these arguments build: shown inline in a notebook, printed as text
        elsewhere; returns the SVG file's path (``path``, or a temporary file).

        Covalent shows it in its UI; here it needs nothing beyond covalent-core.
        """
        from .drawing import draw_graph, graph_text, show_inline

        graph = self.build_graph(*args, **kwargs)
        svg = draw_graph(graph, self.__name__, path)
        if not show_inline(svg):
            print(graph_text(graph, f"{self.__name__} (drawn to {svg})"))
        return svg

    def metadata_json(self, default_executor: Any = None) -> str:
        """The lattice's metadata as its sublattices receive it (Covalent's key layout)."""
        from ..plugins import executor_spec_json

        executor = self.metadata.get("executor")
        executor = executor if executor is not None else default_executor
        name, data = executor_spec_json(executor)
        wf_name, wf_data = executor_spec_json(self.metadata.get("workflow_executor") or executor)
        return json.dumps(
            {
                "executor": name,
                "workflow_executor": wf_name,
                "hooks": {},
                "triggers": None,
                "executor_data": data,
                "workflow_executor_data": wf_data,
            }
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["transport_graph"] = TransportGraph()  # rebuilt where it is needed
        state["inputs"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("replace_electrons", {})  # pickled before redispatch existed


def lattice(
    _func: Callable[..., Any] | None = None,
    *,
    executor: Any = None,
    backend: Any = None,
    workflow_executor: Any = None,
    deps_bash: Any = None,
    deps_pip: Any = None,
    call_before: Any = None,
    call_after: Any = None,
    triggers: Any = None,
    deadline: Any = None,
) -> Any:
    """Make a function a workflow; ``executor`` is the default for its electrons.

    ``workflow_executor`` runs the nodes the graph makes for itself from the workflow's code
    (arithmetic on outputs and assembling the result); by default they run locally.
    ``deps_bash``, ``deps_pip``, ``call_before`` and ``call_after`` apply to each electron
    that declares none of these itself (:mod:`covalent_core._workflow.deps`).
    ``triggers`` (a trigger or a list of them, :mod:`covalent_core.triggers`) make
    ``dispatch`` register the workflow and let them run it. ``deadline`` (``"2h"``, a
    ``datetime``, ...: :mod:`covalent_core.deadlines`) is each dispatch's, unless
    ``dispatch`` gives one: when it passes, what is unfinished is cancelled.
    """
    armed = _trigger_list(triggers)
    deadline_at(deadline, time.time())  # a mistake is said here, not at each dispatch
    hooks = task_environment(
        deps_bash=deps_bash, deps_pip=deps_pip, call_before=call_before, call_after=call_after
    )

    def decorate(function: Callable[..., Any]) -> Lattice:
        return Lattice(
            function,
            executor=executor if executor is not None else backend,
            workflow_executor=workflow_executor,
            hooks=hooks,
            triggers=armed,
            deadline=deadline,
        )

    return decorate if _func is None else decorate(_func)


def _trigger_list(triggers: Any) -> list[Any] | None:
    """``triggers`` as a list of trigger objects (None: none), or TypeError."""
    if triggers is None:
        return None
    items = list(triggers) if isinstance(triggers, (list, tuple)) else [triggers]
    for item in items:
        if not (
            callable(getattr(item, "observe", None)) and callable(getattr(item, "trigger", None))
        ):
            raise TypeError(
                "lattice triggers are trigger objects (covalent_core.triggers: TimeTrigger, "
                f"DirTrigger, DatabaseTrigger or a BaseTrigger subclass), not {item!r}"
            )
    return items or None


__all__ = ["Lattice", "lattice"]
