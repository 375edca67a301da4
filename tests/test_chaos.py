"""Chaos: the dispatcher service is SIGKILLed at random moments, over and over.

Each round dispatches a small graph (a fan-out of tasks of random lengths, a join, a last
step), kills the service at a random moment, sometimes lets tasks finish while none runs,
then waits for the result as a user would (which starts the next service). Every round must
end COMPLETED with the right value, every task must have started exactly once, and at the
end no process of a dead service may be left and no task directory remain.

The seed is printed; ``COVALENT_CORE_CHAOS_SEED=N`` replays a run.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
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
        if "covalent_core.local.worker" not in (proc.info.get("cmdline") or []):
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


CLIENTS = 8
DISPATCHES_PER_CLIENT = 20
SERVICE_KILLS = 5


def stored_dispatches(name: str) -> list[tuple[str, str | None]]:
    """(id, key) of the top-level dispatches a client stored (its workflow bears its name);
    read from the store as any observer may."""
    from sqlalchemy import select

    from covalent_core.store import open_store
    from covalent_core.store.schema import dispatches

    stmt = select(dispatches.c.dispatch_id, dispatches.c.dispatch_key).where(
        dispatches.c.name == name, dispatches.c.parent_dispatch_id.is_(None)
    )
    with open_store().read() as conn:
        return [(row.dispatch_id, row.dispatch_key) for row in conn.execute(stmt)]


def test_clients_dispatching_and_cancelling_while_the_service_is_killed(tmp_path):
    """8 clients dispatch 160 workflows and cancel some at random while the service is
    SIGKILLed 5 times: every dispatch() either returned the id of a dispatch that runs, or
    raised having stored nothing; every dispatch nobody cancelled COMPLETED with its value;
    no task ran twice; nothing is left behind."""
    seed = int(os.environ.get("COVALENT_CORE_CHAOS_SEED") or time.time_ns() % 1_000_000)
    print(f"chaos seed {seed}")
    rng = random.Random(seed)
    client_script = Path(helpers.__file__).with_name("chaos_client.py")
    clients = []
    for index in range(CLIENTS):
        report = tmp_path / f"client{index}.jsonl"
        argv = [sys.executable, str(client_script), f"chaos_client{index}", str(tmp_path),
                str(report), str(DISPATCHES_PER_CLIENT), str(seed + index)]  # fmt: skip
        clients.append((f"chaos_client{index}", report, subprocess.Popen(argv)))
    kills = 0
    while any(proc.poll() is None for *_, proc in clients):
        time.sleep(rng.uniform(1.0, 4.0))
        if kills < SERVICE_KILLS and service_pid() is not None:
            kill_service()
            kills += 1
    assert [proc.returncode for *_, proc in clients] == [0] * CLIENTS
    assert kills == SERVICE_KILLS, f"the service was killed {kills} times"

    calls = errors = 0
    for name, report, _ in clients:
        lines = [json.loads(line) for line in report.read_text().splitlines()]
        assert len(lines) == DISPATCHES_PER_CLIENT, name
        stored = stored_dispatches(name)
        returned = {line["id"] for line in lines if "id" in line}
        calls += len(lines)
        errors += sum(1 for line in lines if "error" in line)
        # Exactly once from the caller's side: what returned an id is stored once; what raised
        # stored nothing (no dispatch of that key, and no dispatch nobody was told about).
        assert sorted(i for i, _ in stored) == sorted(returned), (name, lines)
        keys = {key for _, key in stored if key}
        for line in lines:
            if "error" in line and line["key"]:
                assert line["key"] not in keys, line
        for line in lines:
            if "id" not in line:
                continue
            result = ct.get_result(line["id"], wait=True, timeout=300)
            where = f"{name} dispatch {line['index']} ({line['id']}, seed {seed})"
            log_dir = tmp_path / f"{name}-{line['index']}"
            tasks = [f"part{i}" for i in range(len(line["lengths"]))]
            counts = {task: starts(log_dir, task) for task in tasks}
            assert all(count <= 1 for count in counts.values()), f"{where}: ran twice {counts}"
            if line.get("cancelled") or line.get("cancel_error"):
                assert result.status in (ct.Status.CANCELLED, ct.Status.COMPLETED), where
                continue
            assert result.status is ct.Status.COMPLETED, f"{where}: {result.error}"
            assert result.result == sum(range(len(tasks))), where
            assert set(counts.values()) == {1}, f"{where}: starts per task {counts}"
    print(f"{calls} dispatch() calls, {errors} raised (and stored nothing), {kills} kills")
    assert calls >= 150
    wait_until(lambda: not orphans(), timeout=60, what="no worker of a dead service is left")
