"""Interrupting a stage when its node's cancel arrives.

A node's stages are awaited under its cancel flag: setting the flag cancels the stage
being awaited, which then raises :class:`~covalent_core.errors.TaskCancelledError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from ..errors import TaskCancelledError
from ..status import Stage

if TYPE_CHECKING:
    from ..sdk.base import TaskContext


class CancelFlag(asyncio.Event):
    """A task's cancel flag that, once set, also cancels the stage awaited under it.

    So a stage costs one asyncio task, not three (the stage, a waiter on the flag, and
    :func:`asyncio.wait`'s): there are seven stages per node.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stage: asyncio.Future[Any] | None = None

    def set(self) -> None:
        super().set()
        if self.stage is not None:
            self.stage.cancel()


async def until_cancelled(awaitable: Awaitable[Any], ctx: TaskContext, stage: Stage) -> Any:
    """Await a stage; if a cancel arrives first, cancel it and raise TaskCancelledError."""
    task = asyncio.ensure_future(awaitable)
    flag = ctx.cancelled
    if isinstance(flag, CancelFlag) and not flag.is_set():
        flag.stage = task
        try:
            return await task
        except asyncio.CancelledError:
            ours = asyncio.current_task()
            if not flag.is_set() or (ours is not None and _cancelling(ours)):
                raise  # not the flag's doing: the node itself is being cancelled
        finally:
            flag.stage = None
    else:
        if not task.done() and not flag.is_set():
            await done_or_cancelled(task, flag)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    raise TaskCancelledError(ctx.dispatch_id, ctx.node_id, stage.value)


async def done_or_cancelled(task: asyncio.Future[Any], flag: asyncio.Event) -> None:
    """Return once ``task`` is done or ``flag`` is set, whichever comes first."""
    waiter = asyncio.ensure_future(flag.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


def _cancelling(task: asyncio.Task[Any]) -> bool:
    """True if ``task`` itself was asked to cancel (Python 3.11+; False before)."""
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False
