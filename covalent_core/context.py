"""``ct.get_context()``: inside a running electron, which dispatch and node it is."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .sdk.runner import ENV_DISPATCH_ID, ENV_NODE_ID


@dataclass(frozen=True)
class Context:
    """The dispatch and node of the task that is running (both None outside a task)."""

    dispatch_id: str | None = None
    node_id: int | None = None

    @property
    def task_id(self) -> int | None:
        """Covalent's name for the node id."""
        return self.node_id


def get_context() -> Context:
    """The running task's dispatch id and node id, as in Covalent's ``ct.get_context()``.

    Set for the task's process and every process it starts, on every executor that runs the
    task through covalent-core's runner.
    """
    node = os.environ.get(ENV_NODE_ID)
    return Context(
        dispatch_id=os.environ.get(ENV_DISPATCH_ID),
        node_id=int(node) if node is not None and node.lstrip("-").isdigit() else None,
    )
