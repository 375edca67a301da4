"""Task contexts made as the dispatcher makes them, for driving an executor's stages directly.

A plugin's own tests use them to play a dispatcher that dies at an exact point (after the job
was submitted, before its handle was stored) and a new one that re-attaches::

    stored: list[str] = []
    task = task_context(dispatch_id, 3, nap, [1.5], stored)
    await executor.pickle(task); await executor.upload(task)
    ...
    assert await fresh_executor.reattach(task_context(dispatch_id, 3, ...), None)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cloudpickle

from ..sdk.base import TaskContext
from ..serialize import task_payload


def task_context(
    dispatch_id: str,
    node_id: int,
    function: Callable[..., Any],
    args: list[Any],
    stored: list[str] | None = None,
    executor_name: str = "test",
) -> TaskContext:
    """A task running ``function(*args)``; handles it stores are appended to ``stored``.

    ``function`` is pickled by value when it is a lambda or a nested function (the resource
    then needs no test module). Without ``stored`` no handle is recorded anywhere, as when a
    dispatcher dies before storing it.
    """
    pickled = cloudpickle.dumps(function)
    arguments = [cloudpickle.dumps(a) for a in args]

    async def record(_task: TaskContext, handle: str) -> None:
        assert stored is not None
        stored.append(handle)

    return TaskContext(
        dispatch_id=dispatch_id,
        node_id=node_id,
        name=getattr(function, "__name__", "task"),
        executor_name=executor_name,
        handle_recorder=record if stored is not None else None,
        payload_factory=lambda env: task_payload(pickled, arguments, {}, env),
    )


def _nested_nap() -> Callable[..., Any]:
    def nap(seconds: float, value: Any = "rested") -> Any:
        import time

        time.sleep(seconds)
        return value

    return nap


nap = _nested_nap()
"""``nap(seconds, value="rested")``: sleeps, returns ``value``. Defined in a function, so it is
pickled by value: the resource needs only Python and cloudpickle."""
