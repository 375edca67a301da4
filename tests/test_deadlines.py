"""Deadlines: when a dispatch's deadline passes, the service cancels what is unfinished with
the reason ``deadline``, keeps what finished, and does so after a restart too."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from helpers import cli, wait_until

import covalent_core as ct
from covalent_core.sdk.processes import ProcessHandle
from covalent_core.testing import kill_service


@ct.electron
def sleeps(seconds: float) -> float:
    import time as _time

    _time.sleep(seconds)
    return seconds


@ct.electron
def quick(x: int) -> int:
    return x + 1


@ct.lattice
def overrun(seconds: float) -> list:
    return [sleeps(seconds), quick(1)]


def running_handle(dispatch_id: str) -> ProcessHandle:
    node = wait_until(
        lambda: (n := ct.get_result(dispatch_id).get_node(0)).job_handle and n, 60, "started"
    )
    return ProcessHandle.from_json(json.dumps(node.job_handle))


def test_a_passed_deadline_cancels_what_is_unfinished_and_keeps_what_finished() -> None:
    dispatch_id = ct.dispatch(overrun, deadline="3s")(600)
    handle = running_handle(dispatch_id)
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    assert result.status is ct.Status.CANCELLED
    assert result.get_node(0).cancel_reason == "deadline"
    assert [n.status for n in result.tasks if n.name == "quick"] == [ct.Status.COMPLETED]
    wait_until(lambda: not handle.alive(), 30, "the task's process is gone")
    assert json.loads(cli("status", dispatch_id, "--json").stdout)["deadline_at"] == pytest.approx(
        result.deadline_at
    )
    # A redispatch with reuse goes on from what finished.
    again = ct.redispatch(dispatch_id, reuse_previous_results=True)(0.1)
    done = ct.get_result(again, wait=True, timeout=120)
    assert done.status is ct.Status.COMPLETED
    assert [n.reused_from for n in done.tasks if n.name == "quick"] == [dispatch_id]


def test_the_next_service_applies_a_deadline_that_passed_while_none_ran() -> None:
    dispatch_id = ct.dispatch(overrun, deadline=dt.timedelta(seconds=4))(600)
    handle = running_handle(dispatch_id)
    kill_service()
    time.sleep(5)  # the deadline passes while no service runs
    assert handle.alive(), "the task died with the service"
    result = ct.get_result(dispatch_id, wait=True, timeout=120)  # starts the next service
    assert result.status is ct.Status.CANCELLED
    assert result.get_node(0).cancel_reason == "deadline"
    wait_until(lambda: not handle.alive(), 30, "the task's process is gone")


def test_a_lattice_deadline_is_each_dispatchs_unless_the_dispatch_gives_one() -> None:
    @ct.lattice(deadline="1h")
    def bounded(x):
        return quick(x)

    first = ct.get_result(ct.dispatch(bounded)(1), wait=True, timeout=60)
    assert first.result == 2
    assert (
        3500 < first.deadline_at - first.created_at <= 3600
        if hasattr(first, "created_at")
        else True
    )
    second = ct.dispatch(bounded, deadline="2s")(1)
    assert ct.get_result(second).deadline_at - time.time() < 10
    assert ct.get_result(ct.dispatch(overrun)(0.0), wait=True, timeout=60).deadline_at is None


@pytest.mark.parametrize(
    "bad",
    ["soon", 0, -5, True, "0s", dt.datetime(2000, 1, 1), [1]],
)
def test_a_bad_deadline_is_refused_and_nothing_is_stored(bad: object) -> None:
    before = len(ct.list_dispatches(100_000))
    with pytest.raises((ValueError, TypeError), match="deadline"):
        ct.dispatch(overrun, deadline=bad)(1)
    assert len(ct.list_dispatches(100_000)) == before
    with pytest.raises((ValueError, TypeError), match="deadline"):
        ct.lattice(deadline=bad)(lambda: None)


def test_status_and_watch_show_the_time_left() -> None:
    dispatch_id = ct.dispatch(overrun, deadline="1h")(600)
    running_handle(dispatch_id)
    try:
        shown = cli("status", dispatch_id).stdout
        assert "deadline" in shown and ("(in 59m" in shown or "(in 1h 00m" in shown), shown
    finally:
        ct.cancel(dispatch_id, wait=True, timeout=60)
    short = ct.dispatch(overrun, deadline="2s")(600)
    running_handle(short)
    watched = cli("watch", short)  # follows it to its end: the deadline's cancel
    assert watched.returncode == 3 and "deadline" in watched.stdout
    assert ct.get_result(short).get_node(0).cancel_reason == "deadline"
