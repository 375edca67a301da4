"""Chaos: the dispatcher service is SIGKILLed at random moments, over and over.

Each round dispatches a small graph (a fan-out of tasks of random lengths, a join, a last
step), kills the service at a random moment, sometimes lets tasks finish while none runs,
then waits for the result as a user would (which starts the next service). Every round must
end COMPLETED with the right value, every task must have started exactly once, and at the
end no process of a dead service may be left and no task directory remain.

The seed is printed; ``COVALENT_CORE_CHAOS_SEED=N`` replays a run.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import helpers
import psutil
from helpers import starts, wait_until

import covalent_core as ct
from covalent_core import config
from covalent_core.testing import kill_service, service_pid

ROUNDS = 20
logged = ct.electron(helpers.logged)


@ct.electron
def join(values: list[int]) -> int:
    return sum(values)


@ct.lattice
def chaos(log_dir: str, lengths: list[float]) -> int:
    parts = [logged(log_dir, f"part{i}", length, i) for i, length in enumerate(lengths)]
    total = join(parts)
    return logged(log_dir, "last", 0.1, total)


def workers_of_this_store() -> list[psutil.Process]:
    """Worker processes started for this test session's store (its data directory)."""
    data_dir = os.environ["COVALENT_CORE_DATA_DIR"]
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if "covalent_core.executors.worker" not in (proc.info.get("cmdline") or []):
            continue
        try:
            if proc.environ().get("COVALENT_CORE_DATA_DIR") == data_dir:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def orphans() -> list[str]:
    """Workers of this store whose service is not the one running now."""
    live = service_pid()
    left = []
    for proc in workers_of_this_store():
        try:
            # A worker's own child (the task it forked ahead) counts as that worker's.
            owners = {p.pid for p in proc.parents()[:2]}
            if proc.status() != psutil.STATUS_ZOMBIE and live not in owners:
                left.append(f"pid {proc.pid} (parent {proc.ppid()})")
        except psutil.Error:
            continue
    return left


def test_killing_the_service_at_random_moments_loses_and_repeats_nothing(tmp_path):
    seed = int(os.environ.get("COVALENT_CORE_CHAOS_SEED") or time.time_ns() % 1_000_000)
    print(f"chaos seed {seed}")
    rng = random.Random(seed)
    kills = 0
    for round_ in range(ROUNDS):
        log_dir = tmp_path / f"round{round_}"
        log_dir.mkdir()
        lengths = [round(rng.uniform(0.2, 2.0), 2) for _ in range(rng.randint(2, 5))]
        dispatch_id = ct.dispatch(chaos)(str(log_dir), lengths)
        time.sleep(rng.uniform(0.0, 2.5))
        kill_service()
        kills += 1
        if rng.random() < 0.5:
            time.sleep(rng.uniform(0.0, 1.5))  # tasks may finish while no service runs
        result = ct.get_result(dispatch_id, wait=True, timeout=180)
        where = f"round {round_} (seed {seed}, lengths {lengths})"
        assert result.status is ct.Status.COMPLETED, f"{where}: {result.error}"
        assert result.result == sum(range(len(lengths))), where
        names = [f"part{i}" for i in range(len(lengths))] + ["last"]
        counts = {name: starts(log_dir, name) for name in names}
        assert set(counts.values()) == {1}, f"{where}: starts per task {counts}"
    assert kills == ROUNDS
    wait_until(lambda: not orphans(), timeout=60, what="no worker of a dead service is left")
    tasks = sorted(p.name for p in config.tasks_dir().iterdir())
    assert tasks == [], f"task directories left behind: {tasks}"


def test_the_orphan_probe_sees_a_worker_of_a_dead_service(tmp_path):
    """The chaos test's 'nothing orphaned' check can fail: a running task outlives a kill."""
    dispatch_id = ct.dispatch(chaos)(str(tmp_path), [30.0])
    wait_until(lambda: (tmp_path / "part0.starts").exists(), timeout=60)
    kill_service()
    assert orphans(), "a worker running a task of the killed service was not seen"
    ct.cancel(dispatch_id, wait=True, timeout=60)
    assert not Path(tmp_path / "part0.ends").exists()
