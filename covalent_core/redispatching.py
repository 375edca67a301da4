"""Dispatching a stored dispatch's workflow again: ``redispatch``, and the reruns that
triggers make (:func:`rerun`)."""

from __future__ import annotations

import contextlib
import copy
import sys
from collections.abc import Callable, Iterator
from typing import Any

import cloudpickle

from ._workflow import Lattice
from .errors import SerializationError
from .store import open_store
from .store import queries as q
from .submission import submit
from .values import read_value


def redispatch(
    dispatch_id: str,
    new_lattice: Lattice | None = None,
    replace_electrons: dict[str, Any] | None = None,
    reuse_previous_results: bool = False,
    dispatcher_addr: str | None = None,
    *,
    held: bool = False,
) -> Callable[..., str]:
    """Return a function that dispatches a dispatch's workflow again; it returns the new id.

    As Covalent's ``ct.redispatch``: called with no arguments it uses the earlier inputs, else
    the new ones; ``replace_electrons={"name": electron}`` builds the graph with those
    electrons in place of the ones of that name; ``new_lattice`` (ours) replaces the whole
    workflow. With ``reuse_previous_results``, a node whose work is unchanged (same code,
    options, executor and inputs, recursively: :mod:`covalent_core.reuse`) and which COMPLETED
    there is not run again: its output is taken, not copied, and the node records where it
    came from (``NodeResult.reused_from``). A reused node never reaches an executor. Reuse
    works after a cancel or a failure alike. ``dispatcher_addr`` (Covalent's second argument,
    also accepted in that place) is ignored: there is no server address. ``held`` (ours):
    the new dispatch is registered, not started (``LocalDispatcher.register_redispatch``).
    """
    if isinstance(new_lattice, str):  # Covalent's second argument: dispatcher_addr
        new_lattice = None  # an address, which means nothing here
    if new_lattice is not None and not isinstance(new_lattice, Lattice):
        raise TypeError(f"redispatch's new_lattice is a @lattice, not {type(new_lattice).__name__}")
    replacements = dict(replace_electrons or {})
    for name, replacement in replacements.items():
        if not isinstance(name, str) or not callable(replacement):
            raise TypeError(
                "replace_electrons maps an electron's function name to its new electron, "
                f"not {name!r}: {replacement!r}"
            )
    store = open_store()
    with store.read() as conn:
        row = q.get_dispatch(conn, dispatch_id, with_result=True)
    if row.parent_dispatch_id is not None:
        raise ValueError(
            f"{dispatch_id} is a sublattice's dispatch; redispatch its top-level dispatch "
            f"({row.root_dispatch_id})"
        )

    def again(*args: Any, **kwargs: Any) -> str:
        return _again(
            row, new_lattice, replacements, reuse_previous_results, args, kwargs, held=held
        )

    return again


def rerun(dispatch_id: str, *, triggered_by: str | None = None) -> str:
    """Redispatch ``dispatch_id`` as it was (same workflow and inputs), recording the trigger
    that asked for it; the new dispatch's id."""
    with open_store().read() as conn:
        row = q.get_dispatch(conn, dispatch_id, with_result=True)
    return _again(row, None, {}, False, (), {}, triggered_by=triggered_by)  # as it ran


def _again(
    row: Any,
    new_lattice: Lattice | None,
    replacements: dict[str, Any],
    reuse: bool,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    triggered_by: str | None = None,
    held: bool = False,
) -> str:
    """Dispatch the stored dispatch ``row``'s workflow again (see :func:`redispatch`)."""
    dispatch_id = row.dispatch_id
    import_path = (row.environment or {}).get("sys_path") or []
    # What the workflow's code imports is found as it was when it was dispatched, here and
    # where its tasks run.
    with _import_path(import_path):
        lattice = new_lattice or _stored(row.lattice, dispatch_id, "workflow")
        if not args and not kwargs and row.inputs is not None:
            inputs = _stored(read_value(row.inputs), dispatch_id, "inputs")
            args, kwargs = tuple(inputs["args"]), dict(inputs["kwargs"])
    lattice = copy.copy(lattice)
    lattice.replace_electrons = {**lattice.replace_electrons, **replacements}
    return submit(
        lattice,
        args,
        kwargs,
        redispatched_from=dispatch_id,
        reuse=reuse,
        import_path=import_path,
        triggered_by=triggered_by,
        environment_of=dispatch_id if triggered_by is not None else None,
        held=held,
    )


@contextlib.contextmanager
def _import_path(entries: list[str]) -> Iterator[None]:
    """While inside, ``entries`` that ``sys.path`` lacks are on it (after its own)."""
    added = [entry for entry in entries if entry not in sys.path]
    sys.path.extend(added)
    try:
        yield
    finally:
        for entry in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)


def _stored(data: bytes | None, dispatch_id: str, what: str) -> Any:
    """Unpickle a dispatch's stored workflow or inputs, saying what to do when it fails."""
    try:
        if data is None:
            raise ValueError("it was not stored")
        return cloudpickle.loads(data)
    except Exception as exc:
        remedy = "pass new_lattice=" if what == "workflow" else "pass the arguments"
        raise SerializationError(
            f"the {what} of dispatch {dispatch_id} cannot be loaded here "
            f"({type(exc).__name__}: {exc}); {remedy} to redispatch"
        ) from None
