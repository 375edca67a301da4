"""Cancel a task's job from a fresh process, from what the store holds and nothing else.

    python -m covalent_core.testing.fresh_cancel DISPATCH_ID NODE_ID

Reads the node's job (executor name, stored configuration, handle), builds the executor
through the plugin hooks, calls ``covalent_cancel`` and prints ``{"confirmed": ..., "seconds":
...}`` as JSON. This is what a dispatcher that took over, or a user with only the database,
can do; the conformance suite runs it to prove ``cancel`` needs nothing more.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from ..plugins import registry
from ..store import queries as q
from ..store.db import open_store


def stored_job(dispatch_id: str, node_id: int) -> tuple[str, dict[str, Any], str]:
    """The node's job as stored: executor short name, configuration, handle."""
    with open_store().read() as conn:
        row = q.node_job(conn, dispatch_id, node_id)
    if row is None:
        raise LookupError(f"node {node_id} of dispatch {dispatch_id} has no stored job handle")
    return row.executor, dict(row.executor_config), row.handle


async def cancel_stored_job(dispatch_id: str, node_id: int) -> bool:
    """Cancel the node's job with an executor built from the stored configuration."""
    name, config, handle = stored_job(dispatch_id, node_id)
    reg = registry()
    executor = await reg.hook.covalent_instantiate(
        executor_class=reg.executor_class(name), config=config
    )
    try:
        metadata = {"dispatch_id": dispatch_id, "node_id": node_id}
        return bool(
            await reg.hook.covalent_cancel(
                executor=executor, task_metadata=metadata, job_handle=handle
            )
        )
    finally:
        await executor.close()


def main(argv: list[str]) -> int:
    dispatch_id, node_id = argv[0], int(argv[1])
    start = time.monotonic()
    confirmed = asyncio.run(cancel_stored_job(dispatch_id, node_id))
    print(json.dumps({"confirmed": confirmed, "seconds": time.monotonic() - start}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
