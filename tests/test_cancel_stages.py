"""Cancel before and inside each stage, proven with a recording executor plugin.

The recording executor (tests/support/recording_executor.py) runs in the dispatcher service,
writes what each hook did to disk and can hold inside any stage until released.
"""

from __future__ import annotations

import time

import pytest
from helpers import wait_until
from recording_executor import RecordingExecutor, events

import covalent_core as ct
from covalent_core.sdk.processes import is_dead

STAGE_ORDER = ["pickle", "upload", "provision", "run", "fetch"]


@ct.electron
def sleepy(seconds):
    import time as _time

    _time.sleep(seconds)
    return seconds


def _flow(executor, seconds=0.0):
    task = ct.electron(sleepy.function, executor=executor)

    @ct.electron
    def after(x):
        return x

    @ct.lattice
    def flow():
        return after(task(seconds))

    return flow


def _node_events(record_dir, dispatch_id, node_id=0):
    key = f"{dispatch_id[:8]}:{node_id}"
    return [e["event"] for e in events(record_dir) if e["node"] == key]


@pytest.mark.parametrize("stage", STAGE_ORDER)
def test_cancel_inside_a_stage_stops_it_and_no_later_stage_runs(tmp_path, stage):
    record_dir = tmp_path
    executor = RecordingExecutor(record_dir=str(record_dir), hold=stage)
    dispatch_id = ct.dispatch(_flow(executor, seconds=0.0))()
    wait_until(lambda: f"holding:{stage}" in _node_events(record_dir, dispatch_id))
    ct.cancel(dispatch_id, task_ids=[0])
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    node = result.get_node(0)
    assert node.status is ct.Status.CANCELLED
    assert node.cancel_stage == stage
    seen = _node_events(record_dir, dispatch_id)
    later = STAGE_ORDER[STAGE_ORDER.index(stage) + 1 :]
    assert not set(later) & set(seen), seen
    assert seen[-1] == "cleanup"  # cleanup of what earlier stages created still runs
    assert not (record_dir / f"{dispatch_id}-0").exists()
    if STAGE_ORDER.index(stage) <= STAGE_ORDER.index("upload"):
        assert "started" not in seen
    assert result.get_node(2).status is ct.Status.CANCELLED


def test_cancel_before_the_executor_is_instantiated_never_instantiates_it(tmp_path):
    gate_dir = tmp_path / "gate"
    gate_dir.mkdir()
    gate = RecordingExecutor(record_dir=str(gate_dir), hold="run")
    late = RecordingExecutor(record_dir=str(tmp_path), cancel_grace=1.0)
    first = ct.electron(sleepy.function, executor=gate)
    second = ct.electron(sleepy.function, executor=late)

    @ct.lattice
    def flow():
        return second(first(0))

    dispatch_id = ct.dispatch(flow)()
    wait_until(lambda: "holding:run" in _node_events(gate_dir, dispatch_id))
    ct.cancel(dispatch_id, task_ids=[2])
    (gate_dir / "release").write_text("go")
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.get_node(0).status is ct.Status.COMPLETED
    assert result.get_node(2).status is ct.Status.CANCELLED
    # The test process built the executor to configure it; the dispatcher never did, and
    # nothing was pickled, uploaded, provisioned or run for the cancelled node.
    import os

    assert [e for e in events(tmp_path) if e["node"] != f"pid:{os.getpid()}"] == []


def test_cancel_while_running_kills_the_job_found_by_its_handle(tmp_path):
    executor = RecordingExecutor(record_dir=str(tmp_path))
    dispatch_id = ct.dispatch(_flow(executor, seconds=1000))()
    wait_until(lambda: "started" in _node_events(tmp_path, dispatch_id))
    handle = ct.get_result(dispatch_id).get_node(0).job_handle
    ct.cancel(dispatch_id)
    wait_until(lambda: is_dead(handle["pid"]), timeout=10)
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.get_node(0).cancel_stage == "run"
    assert "fetch" not in _node_events(tmp_path, dispatch_id)


def test_failing_cancel_is_retried_and_shown_as_cancelling_until_confirmed(tmp_path):
    executor = RecordingExecutor(record_dir=str(tmp_path), cancel_failures=4)
    dispatch_id = ct.dispatch(_flow(executor, seconds=1000))()
    wait_until(lambda: "started" in _node_events(tmp_path, dispatch_id))
    handle = ct.get_result(dispatch_id).get_node(0).job_handle
    ct.cancel(dispatch_id, task_ids=[0])
    cancelling = wait_until(
        lambda: (
            (n := ct.get_result(dispatch_id).get_node(0)).status is ct.Status.CANCELLING
            and n.error
            and n
        ),
        timeout=30,
    )
    assert "cancel attempt" in cancelling.error and "unreachable" in cancelling.error
    assert not is_dead(handle["pid"])  # honest: the job still runs while unconfirmed
    wait_until(lambda: is_dead(handle["pid"]), timeout=30)
    wait_until(lambda: ct.get_result(dispatch_id).get_node(0).status is ct.Status.CANCELLED, 30)
    assert _node_events(tmp_path, dispatch_id).count("cancel") == 5
    assert ct.get_result(dispatch_id, wait=True, timeout=30).status is ct.Status.CANCELLED


def test_cancel_that_never_succeeds_does_not_hang_the_dispatch(tmp_path):
    executor = RecordingExecutor(record_dir=str(tmp_path), cancel_failures=-1)
    dispatch_id = ct.dispatch(_flow(executor, seconds=1000))()
    wait_until(lambda: "started" in _node_events(tmp_path, dispatch_id))
    handle = ct.get_result(dispatch_id).get_node(0).job_handle
    try:
        ct.cancel(dispatch_id)
        result = ct.get_result(dispatch_id, wait=True, timeout=60)
        assert result.status is ct.Status.CANCELLED
        stuck = result.get_node(0)
        assert stuck.status is ct.Status.CANCELLING  # visible as not confirmed
        assert "cancel attempt" in stuck.error
    finally:
        import os
        import signal

        os.killpg(handle["pgid"], signal.SIGKILL)


def test_late_completion_never_overwrites_cancelled(tmp_path):
    executor = RecordingExecutor(record_dir=str(tmp_path), hold="fetch", finish_despite_cancel=True)
    dispatch_id = ct.dispatch(_flow(executor, seconds=0))()
    wait_until(lambda: "holding:fetch" in _node_events(tmp_path, dispatch_id))
    ct.cancel(dispatch_id, task_ids=[0])
    time.sleep(0.3)
    (tmp_path / "release").write_text("go")  # the executor now reports success, too late
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.get_node(0).status is ct.Status.CANCELLED
    assert result.get_node(0).output is None


def test_cancelling_one_packed_task_cancels_the_job_and_marks_both(tmp_path):
    executor = RecordingExecutor(record_dir=str(tmp_path), pack="p1")
    task = ct.electron(sleepy.function, executor=executor)

    @ct.lattice
    def flow():
        return [task(1000), task(1000)]

    dispatch_id = ct.dispatch(flow)()
    wait_until(lambda: "started" in _node_events(tmp_path, dispatch_id))
    result = wait_until(
        lambda: (
            (r := ct.get_result(dispatch_id)).get_node(0).job_handle
            and r.get_node(2).job_handle
            and r
        )
    )
    assert result.get_node(0).job_handle == result.get_node(2).job_handle
    pid = result.get_node(0).job_handle["pid"]
    ct.cancel(dispatch_id, task_ids=[2])
    wait_until(lambda: is_dead(pid), timeout=10)
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.get_node(2).cancel_reason == "user"
    assert result.get_node(0).status is ct.Status.CANCELLED, result.get_node(0).error
    assert result.get_node(0).cancel_reason == "packed job cancelled"


def test_cancel_from_a_fresh_process_uses_only_config_and_handle(tmp_path):
    import asyncio
    import json
    import subprocess
    import sys

    executor = RecordingExecutor(record_dir=str(tmp_path))
    dispatch_id = ct.dispatch(_flow(executor, seconds=1000))()
    wait_until(lambda: "started" in _node_events(tmp_path, dispatch_id))
    node = ct.get_result(dispatch_id).get_node(0)
    code = (
        "import asyncio, json, sys\n"
        "from recording_executor import RecordingExecutor\n"
        "cfg, handle = json.loads(sys.argv[1]), sys.argv[2]\n"
        "meta = {'dispatch_id': 'x', 'node_id': 0}\n"
        "ok = asyncio.run(RecordingExecutor(**cfg).cancel(meta, handle))\n"
        "print(ok)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(executor.config), json.dumps(node.job_handle)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "True", out.stderr
    assert is_dead(node.job_handle["pid"])
    del asyncio
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.get_node(0).status is ct.Status.FAILED  # killed by someone else: FAILED
