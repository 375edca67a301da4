"""Covalent's triggers, run by the service: a trigger's first firing starts the registered
dispatch, each later one redispatches it; triggers are stored, re-armed by the next service,
keep the service up, and stop only when asked."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import wait_until

import covalent_core as ct
from covalent_core.errors import DispatchNotFoundError
from covalent_core.testing import isolated_store, kill_service, service_pid, stop_all_triggers
from covalent_core.triggers import (
    BaseTrigger,
    DatabaseTrigger,
    DirTrigger,
    SQLiteTrigger,
    TimeTrigger,
)


@ct.electron
def note_run(log: str, x: int, after: object = None) -> list:
    context = ct.get_context()
    with open(log, "a") as fh:
        fh.write(context.dispatch_id + "\n")
    return [x, os.environ.get("TRIGGER_TEST_VARIABLE"), os.getcwd()]


@ct.electron
def wait_for(gate: str) -> int:
    while not os.path.exists(gate):
        time.sleep(0.05)
    return 1


def workflow(triggers, gate: bool = False):
    @ct.lattice(triggers=triggers)
    def triggered(log: str, x: int, gate_path: str = "") -> list:
        return note_run(log, x, wait_for(gate_path) if gate else None)

    return triggered


def runs(log: Path) -> list[str]:
    """The dispatch ids of the runs, in the order they ran."""
    return log.read_text().split() if log.exists() else []


def listed(*extra: str) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "covalent_core", "triggers", "--json", *extra],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


@pytest.fixture(autouse=True)
def no_trigger_left_armed():
    """Every test's triggers are stopped at its end: the session's service would keep
    running them, and stay up for them."""
    yield
    stop_all_triggers()


def test_a_time_trigger_starts_the_dispatch_then_redispatches_it(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    dispatch_id = ct.dispatch(workflow(TimeTrigger(time_gap=0.5)))(str(log), 7)
    assert ct.get_result(dispatch_id).status is ct.Status.NEW_OBJECT  # registered, not run
    wait_until(lambda: len(runs(log)) >= 3, 60, "three runs")
    stopped = ct.stop_triggers(dispatch_id)
    assert len(stopped) == 1
    made = runs(log)
    assert made[0] == dispatch_id  # the first firing starts the registered dispatch
    for run in made:
        result = ct.get_result(run, wait=True, timeout=60)
        assert result.status is ct.Status.COMPLETED and result.result[0] == 7
    for run in made[1:]:  # each later one is a redispatch that records the trigger
        result = ct.get_result(run)
        assert (result.redispatched_from, result.triggered_by) == (dispatch_id, stopped[0])
    [row] = [r for r in listed("--all") if r["trigger_id"] == stopped[0]]
    assert not row["armed"] and row["kind"] == "TimeTrigger" and row["description"] == "every 0.5 s"
    fired = row["fired"]
    assert fired >= len(made)
    time.sleep(1.5)  # three periods: a stopped trigger fires no more
    assert [r["fired"] for r in listed("--all") if r["trigger_id"] == stopped[0]] == [fired]


def test_a_triggered_run_sees_the_environment_of_the_dispatch_not_the_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "runs.log"
    monkeypatch.setenv("TRIGGER_TEST_VARIABLE", "from the dispatching process")
    monkeypatch.chdir(tmp_path)
    dispatch_id = ct.dispatch(workflow(TimeTrigger(time_gap=0.5)))(str(log), 1)
    wait_until(lambda: len(runs(log)) >= 2, 60, "two runs")
    ct.stop_triggers(dispatch_id)
    for run in runs(log)[:2]:
        result = ct.get_result(run, wait=True, timeout=60)
        assert result.result == [1, "from the dispatching process", str(tmp_path)], run


def test_a_dir_trigger_runs_the_workflow_on_what_happens_in_the_directory(tmp_path: Path) -> None:
    watched = tmp_path / "inbox"
    watched.mkdir()
    log = tmp_path / "runs.log"
    trigger = DirTrigger(str(watched), "created")
    dispatch_id = ct.dispatch(workflow(trigger))(str(log), 2)
    (watched / "a.csv").write_text("1")
    wait_until(lambda: len(runs(log)) == 1, 60, "a run for the first file")
    assert runs(log) == [dispatch_id]
    (watched / "b.csv").write_text("2")
    wait_until(lambda: len(runs(log)) == 2, 60, "a run for the second file")
    second = ct.get_result(runs(log)[1], wait=True, timeout=60)
    assert second.redispatched_from == dispatch_id and second.result[0] == 2
    ct.stop_triggers(dispatch_id)


def test_a_dir_trigger_with_a_batch_runs_once_per_batch(tmp_path: Path) -> None:
    watched = tmp_path / "inbox"
    watched.mkdir()
    log = tmp_path / "runs.log"
    dispatch_id = ct.dispatch(workflow(DirTrigger(watched, ["created"], batch_size=3)))(str(log), 3)
    for name in "abcdef":
        (watched / name).touch()
    wait_until(lambda: len(runs(log)) == 2, 60, "a run for each batch of three")
    time.sleep(1.0)
    assert len(runs(log)) == 2, "a run for less than a batch"
    ct.stop_triggers(dispatch_id)


def test_a_database_trigger_runs_the_workflow_when_rows_appear(tmp_path: Path) -> None:
    database = tmp_path / "queue.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT)")
        db.execute("INSERT INTO jobs (state) VALUES ('done')")
    log = tmp_path / "runs.log"
    trigger = DatabaseTrigger(
        f"sqlite:///{database}", "jobs", poll_interval=0.2, where_clauses=["state = 'ready'"]
    )
    dispatch_id = ct.dispatch(workflow(trigger))(str(log), 4)
    time.sleep(1.0)
    assert runs(log) == [], "a run while no row matched"
    with sqlite3.connect(database) as db:
        db.execute("INSERT INTO jobs (state) VALUES ('ready')")
    wait_until(lambda: runs(log) == [dispatch_id], 60, "a run once a row matched")
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM jobs WHERE state = 'ready'")
    ct.stop_triggers(dispatch_id)


def test_an_sqlite_trigger_reads_the_file_it_names(tmp_path: Path) -> None:
    database = tmp_path / "events.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE events (name TEXT)")
        db.execute("INSERT INTO events VALUES ('go')")
    log = tmp_path / "runs.log"
    trigger = SQLiteTrigger(str(database), "events", poll_interval=0.2, trigger_after_n=2)
    dispatch_id = ct.dispatch(workflow(trigger))(str(log), 5)
    wait_until(lambda: len(runs(log)) >= 1, 60, "a run on every second read that finds rows")
    assert runs(log)[0] == dispatch_id
    ct.stop_triggers(dispatch_id)


def test_triggers_are_stored_and_the_next_service_arms_them_again(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    dispatch_id = ct.dispatch(workflow(TimeTrigger(time_gap=0.5)))(str(log), 6)
    wait_until(lambda: len(runs(log)) >= 1, 60, "a first run")
    killed = kill_service()
    made = len(runs(log))
    listed()  # any command that reads starts the service: it re-arms the stored triggers
    wait_until(lambda: len(runs(log)) >= made + 2, 60, "runs after the restart")
    assert service_pid() not in (None, killed)
    ct.stop_triggers(dispatch_id)


def test_the_service_stays_up_while_triggers_are_armed(tmp_path: Path) -> None:
    with isolated_store(tmp_path / "data", (), idle_timeout=1.0):
        dispatch_id = ct.dispatch(workflow(TimeTrigger(time_gap=3600)))(str(tmp_path / "l"), 0)
        pid = service_pid()
        assert pid is not None
        time.sleep(4.0)  # well past the idle timeout
        assert service_pid() == pid, "the service exited idle while a trigger was armed"
        ct.stop_triggers(dispatch_id)
        wait_until(lambda: service_pid() is None, 60, "the service exits idle once none is armed")


def test_cancelling_a_triggered_run_does_not_disarm_its_trigger(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    gate = tmp_path / "gate"
    dispatch_id = ct.dispatch(workflow(TimeTrigger(time_gap=1.0), gate=True))(
        str(log), 8, str(gate)
    )
    wait_until(lambda: ct.get_result(dispatch_id).status is ct.Status.RUNNING, 60, "started")
    ct.cancel(dispatch_id, wait=True, timeout=60)  # its run waits for the gate: never logged
    assert ct.get_result(dispatch_id).status is ct.Status.CANCELLED
    [row] = listed("--dispatch", dispatch_id)
    assert row["armed"]
    gate.touch()
    wait_until(lambda: len(runs(log)) >= 1, 60, "a later firing runs the workflow again")
    ct.stop_triggers(dispatch_id)
    assert ct.get_result(runs(log)[0], wait=True, timeout=60).status is ct.Status.COMPLETED


class OnceTrigger(BaseTrigger):
    """A custom trigger: one run as soon as it is armed, then it waits to be stopped."""

    def observe(self) -> None:
        self.trigger()
        self._stop_event().wait()


def test_a_custom_trigger_runs_in_the_service(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    dispatch_id = ct.dispatch(workflow(OnceTrigger()))(str(log), 9)
    assert ct.get_result(dispatch_id, wait=True, timeout=60).result[0] == 9
    [row] = listed("--dispatch", dispatch_id)
    assert row["kind"] == "OnceTrigger" and row["armed"] and row["fired"] == 1
    ct.stop_triggers(dispatch_id)


def test_a_trigger_registered_by_hand_after_a_disabled_run(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    dispatch_id = ct.dispatch(workflow(None), disable_run=True)(str(log), 10)
    trigger = TimeTrigger(time_gap=0.3)
    trigger.lattice_dispatch_id = dispatch_id
    trigger.register()
    wait_until(lambda: len(runs(log)) >= 1, 60, "the trigger starts the registered dispatch")
    assert runs(log)[0] == dispatch_id
    ct.stop_triggers([dispatch_id])


def test_a_trigger_that_cannot_watch_is_disarmed_with_the_reason(tmp_path: Path) -> None:
    dispatch_id = ct.dispatch(workflow(DirTrigger(tmp_path / "missing", "created")))(
        str(tmp_path / "l"), 0
    )
    [row] = listed("--all", "--dispatch", dispatch_id)
    assert not row["armed"] and "does not exist" in row["error"]
    out = subprocess.run(
        [sys.executable, "-m", "covalent_core", "triggers", "--all", "--dispatch", dispatch_id],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "250"},
    )  # fmt: skip
    assert out.returncode == 0 and "failed" in out.stdout and "does not exist" in out.stdout


def test_the_triggers_command_lists_and_stops(tmp_path: Path) -> None:
    dispatch_id = ct.dispatch(workflow([TimeTrigger(3600), TimeTrigger(7200)]))(
        str(tmp_path / "l"), 0
    )
    mine = [r["trigger_id"] for r in listed("--dispatch", dispatch_id)]
    assert len(mine) == 2
    cli = [sys.executable, "-m", "covalent_core", "triggers"]
    out = subprocess.run([*cli, "stop", mine[0]], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and f"stopped trigger {mine[0]}" in out.stdout
    out = subprocess.run([*cli, "stop", mine[0]], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "already stopped" in out.stdout
    assert [r["trigger_id"] for r in listed("--dispatch", dispatch_id)] == [mine[1]]
    out = subprocess.run([*cli, "stop", "no-such-trigger"], capture_output=True, text=True)
    assert out.returncode == 2 and "no trigger no-such-trigger" in out.stderr
    assert "Traceback" not in out.stderr
    out = subprocess.run([*cli, "stop"], capture_output=True, text=True)
    assert out.returncode == 2 and "--dispatch" in out.stderr
    out = subprocess.run([*cli, "stop", "--dispatch", dispatch_id], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0 and f"stopped trigger {mine[1]}" in out.stdout
    assert listed("--dispatch", dispatch_id) == []


def test_bad_triggers_get_clear_errors() -> None:
    with pytest.raises(ValueError, match="time_gap"):
        TimeTrigger(time_gap=0)
    with pytest.raises(ValueError, match="event_names"):
        DirTrigger("/tmp", ["renamed"])
    with pytest.raises(TypeError, match="trigger objects"):
        ct.lattice(triggers=[1])(lambda: None)
    with pytest.raises(RuntimeError, match="lattice_dispatch_id"):
        TimeTrigger(5).register()
    with pytest.raises(DispatchNotFoundError):
        ct.stop_triggers("no-such-dispatch")
    with pytest.raises(TypeError, match="dispatch ids"):
        ct.stop_triggers([1])


def test_covalents_trigger_attributes_and_dict() -> None:
    trigger = TimeTrigger(5, "some-id")
    assert trigger.lattice_dispatch_id == "some-id" and trigger.time_gap == 5
    assert trigger.new_dispatch_ids == [] and trigger.observe_blocks
    assert trigger.to_dict()["name"] == "TimeTrigger"
    assert not DirTrigger("/tmp", "created").observe_blocks
    assert SQLiteTrigger("x.db", "t").url().endswith("/x.db")
    assert ct.triggers.available_triggers["DirTrigger"] is DirTrigger


def test_a_time_trigger_stops_at_once() -> None:
    trigger = TimeTrigger(time_gap=3600)
    thread = threading.Thread(target=trigger.observe)
    thread.start()
    time.sleep(0.1)
    trigger.stop()
    thread.join(5)
    assert not thread.is_alive()
