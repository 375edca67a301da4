"""DaskExecutor beyond the conformance suite: Covalent's ``executor="dask"``, the service's own
LocalCluster, a task that never started, a worker that dies, an unreachable scheduler and
the warning about Dask's unauthenticated protocol."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from covalent_dask import DaskExecutor
from pytest_covalent_servers.ports import free_port

import covalent_core as ct
from covalent_core.sdk import ProcessHandle
from covalent_core.sdk.processes import is_dead
from covalent_core.testing import isolated_store, wait_until


def where() -> dict:
    import os

    return {"pid": os.getpid(), "worker_pid": os.getppid()}


def note_and_sleep(path: str, seconds: float) -> str:
    import time

    with open(path, "a") as fh:
        fh.write("started\n")
    time.sleep(seconds)
    return "done"


def one_task(function, executor, *args):
    """A one-task workflow running ``function(*args)`` on ``executor``; its dispatch id."""
    task = ct.electron(function, executor=executor)

    def flow():
        return task(*args)

    flow.__name__ = f"{function.__name__}_flow"
    return ct.dispatch(ct.lattice(flow))()


def test_covalent_workflows_saying_executor_dask_run_on_the_configured_cluster(
    dask_cluster, tmp_path: Path
) -> None:
    @ct.electron(executor="dask")
    def square(x: int) -> int:
        return x * x

    @ct.lattice
    def flow(n: int) -> list:
        return [square(i) for i in range(n)]

    with isolated_store(tmp_path / "data"):
        Path(os.environ["COVALENT_CORE_CONFIG"]).write_text(
            f'[executors.dask]\nscheduler_address = "{dask_cluster.address}"\n'
        )
        result = ct.get_result(ct.dispatch(flow)(4), wait=True, timeout=120)
        assert result.status == ct.status.COMPLETED, result.error
        assert result.result == [0, 1, 4, 9]
        handle = result.get_node(0).job_handle
        # The handle names the cluster, the worker and the task's own process.
        assert handle["scheduler"] == dask_cluster.address
        assert handle["worker"] in dask_cluster.worker_pids()
        assert handle["pid"] > 0 and handle["start_time"] > 0


def test_without_an_address_the_service_runs_a_local_cluster_and_stops_it(
    tmp_path: Path,
) -> None:
    with isolated_store(tmp_path / "data"):
        dispatch_id = one_task(where, DaskExecutor(n_workers=1))
        result = ct.get_result(dispatch_id, wait=True, timeout=120)
        assert result.status == ct.status.COMPLETED, result.error
        worker_pid = result.result["worker_pid"]
        assert not is_dead(worker_pid), "the LocalCluster should run while the service does"
    # Leaving isolated_store stops the service: its LocalCluster goes with it.
    wait_until(lambda: is_dead(worker_pid), 60, "the LocalCluster's worker to stop")


def test_a_task_that_has_not_started_is_cancelled_at_the_scheduler_and_never_runs(
    dask_cluster, tmp_path: Path
) -> None:
    executor = DaskExecutor(scheduler_address=dask_cluster.address, cancel_grace=1.0)
    marks = [tmp_path / f"busy-{i}" for i in range(2)]
    running = [one_task(note_and_sleep, executor, str(m), 600) for m in marks]
    try:
        wait_until(lambda: all(m.exists() for m in marks), 120, "both workers busy")
        queued_mark = tmp_path / "queued"
        queued = one_task(note_and_sleep, executor, str(queued_mark), 600)
        wait_until(
            lambda: ct.get_result(queued).tasks[0].status is ct.Status.RUNNING,
            60,
            "the third task submitted to the cluster",
        )
        assert ct.get_result(queued).tasks[0].job_handle is None, "no worker was free"
        ct.cancel(queued)
        ended = ct.get_result(queued, wait=True, timeout=60)
        assert ended.status == ct.status.CANCELLED, ended.tasks[0].error
    finally:
        for dispatch_id in running:
            ct.cancel(dispatch_id, wait=True, timeout=60)
    # Both workers are free again: a task Dask still held would start now.
    probe = one_task(note_and_sleep, executor, str(tmp_path / "probe"), 0)
    assert ct.get_result(probe, wait=True, timeout=120).status == ct.status.COMPLETED
    assert not queued_mark.exists(), "the cancelled task ran after all"


def test_a_worker_that_dies_fails_its_node_and_the_task_is_not_run_again(
    dask_cluster, tmp_path: Path
) -> None:
    executor = DaskExecutor(scheduler_address=dask_cluster.address, poll_freq=0.2)
    mark = tmp_path / "runs"
    try:
        dispatch_id = one_task(note_and_sleep, executor, str(mark), 600)
        wait_until(lambda: mark.exists(), 120, "the task started")
        handle = ct.get_result(dispatch_id).tasks[0].job_handle
        dask_cluster.kill_worker(handle["worker"])
        result = ct.get_result(dispatch_id, wait=True, timeout=120)
    finally:
        dask_cluster.add_worker()
    node = result.tasks[0]
    assert node.status is ct.Status.FAILED
    assert f"the Dask worker {handle['worker']}" in (node.error or ""), node.error
    process = ProcessHandle.from_json(json.dumps(handle))
    wait_until(lambda: not process.alive(), 30, "the orphaned task process to be stopped")
    assert mark.read_text() == "started\n", "the task ran a second time"


def test_an_unreachable_scheduler_fails_the_node_naming_the_address() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    executor = DaskExecutor(scheduler_address=address, connect_timeout=2)
    result = ct.get_result(one_task(where, executor), wait=True, timeout=120)
    node = result.tasks[0]
    assert node.status is ct.Status.FAILED
    assert f"cannot reach the Dask scheduler at {address}" in (node.error or ""), node.error


def test_a_scheduler_beyond_loopback_without_tls_is_warned_about() -> None:
    with pytest.warns(UserWarning, match="unauthenticated"):
        DaskExecutor(scheduler_address="tcp://10.1.2.3:8786")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DaskExecutor(scheduler_address="tcp://127.0.0.1:8786")
        DaskExecutor(scheduler_address="tls://10.1.2.3:8786")


def test_the_scheduler_error_is_one_of_the_projects_errors() -> None:
    from covalent_dask import DaskSchedulerError

    from covalent_core.errors import CovalentCoreError, ExecutorError

    error = DaskSchedulerError("cannot reach the Dask scheduler")
    assert isinstance(error, ExecutorError) and isinstance(error, CovalentCoreError)
    assert isinstance(error, ConnectionError)  # as before, for code that caught that
