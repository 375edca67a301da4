"""A cancel reaches only the task it names: never the next task its worker runs.

A warm worker runs one task after another. A task's job handle names the task's own process
(forked for it alone, with its own process group and cgroup), not the worker, so a cancel
that arrives after the task ended finds nothing to signal, whatever the worker runs by then.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import random
import time
from collections import Counter

from helpers import wait_for_handle

import covalent_core as ct
from covalent_core.local.executor import LocalExecutor
from covalent_core.status import TERMINAL
from covalent_core.testing import wait_until


def _quick() -> int:
    return 1


def _slow(seconds: float) -> str:
    import time as _time

    _time.sleep(seconds)
    return "finished"


def test_a_cancel_by_an_ended_tasks_handle_spares_the_next_task_of_its_worker():
    one_worker = LocalExecutor(max_workers=1)
    quick = ct.electron(_quick, executor=one_worker)
    slow = ct.electron(_slow, executor=one_worker)

    @ct.lattice
    def first():
        return quick()

    @ct.lattice
    def second():
        return slow(3.0)

    ended = ct.dispatch_sync(first, timeout=60)()
    assert ended.status is ct.Status.COMPLETED, ended.error
    stale = ended.get_node(0).job_handle

    dispatch_id = ct.dispatch(second)()
    running = wait_for_handle(dispatch_id, 0)
    assert running["parent"] == stale["parent"], "both tasks must run on the same worker"

    # What a late cancel of the first task does, from a process of its own, by its handle.
    metadata = {"dispatch_id": ended.dispatch_id, "node_id": 0}
    assert asyncio.run(LocalExecutor().cancel(metadata, json.dumps(stale))) is True

    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    node = result.get_node(0)
    assert node.status is ct.Status.COMPLETED, node.error
    assert result.result == "finished"


def _slow_after(seconds: float, _after: int) -> str:
    import time as _time

    _time.sleep(seconds)
    return "finished"


def test_a_cancel_by_an_ended_tasks_handle_spares_the_next_task_of_its_process():
    """The same, within one dispatch: the process that ran the first task (a pack's) runs the
    next one too; a late cancel of the first must not touch it."""
    one_worker = LocalExecutor(max_workers=1)
    quick = ct.electron(_quick, executor=one_worker)
    slow = ct.electron(_slow_after, executor=one_worker)

    @ct.lattice
    def both():
        return slow(3.0, quick())

    dispatch_id = ct.dispatch(both)()
    running = wait_for_handle(dispatch_id, 1)  # the slow one (node 1: after quick's 0)
    # Node 0's end is recorded beside node 1's start, not always before it.
    wait_until(
        lambda: ct.get_result(dispatch_id).get_node(0).status is ct.Status.COMPLETED,
        30,
        "the quick task recorded as completed",
    )
    stale = ct.get_result(dispatch_id).get_node(0).job_handle
    assert running["pid"] == stale["pid"], "the two tasks must run in the same process"
    metadata = {"dispatch_id": dispatch_id, "node_id": 0}
    assert asyncio.run(LocalExecutor().cancel(metadata, json.dumps(stale))) is True
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.status is ct.Status.COMPLETED, result.error
    assert result.result == "finished"


def _tick(started_dir: str, index: int) -> int:
    import os as _os
    import time as _time

    import covalent_core as _ct

    open(_os.path.join(started_dir, str(_ct.get_context().node_id)), "w").close()
    _time.sleep(0.01)
    return index


def test_cancels_racing_the_ends_of_tasks_never_stop_a_task_nobody_cancelled(tmp_path):
    tick = ct.electron(_tick)

    @ct.lattice
    def many(started_dir, count):
        return [tick(started_dir, i) for i in range(count)]

    # Two dispatches share the two default workers. Every task of one of them is cancelled
    # 0-15 ms after it was seen to start, around the moment it ends (it sleeps 10 ms), while
    # the workers go on to the next tasks of both.
    target_dir, bystander_dir = tmp_path / "target", tmp_path / "bystander"
    target_dir.mkdir()
    bystander_dir.mkdir()
    count = 1000
    target = ct.dispatch(many)(str(target_dir), count)
    bystander = ct.dispatch(many)(str(bystander_dir), 200)
    rng = random.Random(30)

    def cancel_later(node_id: int, delay: float) -> None:
        time.sleep(delay)
        ct.cancel(target, task_ids=[node_id])

    seen: set[int] = set()
    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        cancels = []
        deadline = time.monotonic() + 300
        checked = time.monotonic()
        while len(seen) < count and time.monotonic() < deadline:  # seen: node ids started
            if time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                if ct.get_result(target).status in TERMINAL:
                    break
            for name in os.listdir(target_dir):
                if int(name) not in seen:
                    seen.add(int(name))
                    cancels.append(pool.submit(cancel_later, int(name), rng.uniform(0, 0.015)))
            time.sleep(0.002)
        for done in cancels:
            done.result()

    spared = ct.get_result(bystander, wait=True, timeout=300)
    cancelled = ct.get_result(target, wait=True, timeout=300)
    assert [
        (n.node_id, n.status, n.error) for n in spared.tasks if n.status is not ct.Status.COMPLETED
    ] == []
    assert spared.status is ct.Status.COMPLETED
    for n in cancelled.tasks:
        assert n.status in (ct.Status.COMPLETED, ct.Status.CANCELLED), (n.node_id, n.error)
    outcomes = Counter((n.status.value, n.cancel_stage) for n in cancelled.tasks)
    print(f"{count} cancels in {time.monotonic() - began:.1f} s: {dict(outcomes)}")
