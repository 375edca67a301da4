"""Waiting is pushed: the service answers a waiting client once the end is stored."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psutil

import covalent_core as ct
from covalent_core.service import client as service
from covalent_core.testing import wait_until


@ct.electron
def wait_for_file(path: str) -> str:
    import os
    import time

    while not os.path.exists(path):
        time.sleep(0.01)
    return "opened"


@ct.lattice
def gated(path: str) -> str:
    return wait_for_file(path)


class Watcher(threading.Thread):
    """Asks the service for the end of a dispatch; notes what the store said when it answered."""

    def __init__(self, message: dict) -> None:
        super().__init__(daemon=True)
        self.message = message
        self.answer: dict | None = None
        self.stored_then: str | None = None

    def run(self) -> None:
        self.answer = service.watch(self.message, 60)
        stored = ct.get_result(self.message["dispatch_id"], status_only=True)
        self.stored_then = str(stored["status"])


def test_the_service_answers_a_waiting_client_only_once_the_end_is_stored(tmp_path: Path):
    gate = tmp_path / "open"
    dispatch_id = ct.dispatch(gated)(str(gate))
    watcher = Watcher({"op": "wait_dispatch", "dispatch_id": dispatch_id})
    watcher.start()
    time.sleep(0.5)
    assert watcher.is_alive() and watcher.answer is None  # nothing ended: no answer
    gate.touch()
    watcher.join(60)
    assert watcher.answer == {"ok": True, "watching": True, "status": "COMPLETED"}
    assert watcher.stored_then == "COMPLETED"


def test_a_finished_dispatch_is_answered_at_once(tmp_path: Path):
    gate = tmp_path / "open"
    gate.touch()
    dispatch_id = ct.dispatch(gated)(str(gate))
    assert ct.get_result(dispatch_id, wait=True, timeout=60).result == "opened"
    answer = service.watch({"op": "wait_dispatch", "dispatch_id": dispatch_id}, 60)
    assert answer == {"ok": True, "watching": True, "status": "COMPLETED"}


def test_cancel_wait_is_answered_once_the_tasks_are_cancelled_in_the_store(tmp_path: Path):
    dispatch_id = ct.dispatch(gated)(str(tmp_path / "never"))
    wait_until(lambda: ct.get_result(dispatch_id).get_node(0).job_handle, 60)
    watcher = Watcher({"op": "wait_nodes", "dispatch_id": dispatch_id, "node_ids": [0]})
    watcher.start()
    time.sleep(0.3)
    assert watcher.is_alive()
    ct.cancel(dispatch_id)
    watcher.join(60)
    assert watcher.answer == {"ok": True, "watching": True}
    assert ct.get_result(dispatch_id).get_node(0).status is ct.Status.CANCELLED


def test_an_unknown_dispatch_is_refused_with_its_reason():
    assert service.watch({"op": "wait_dispatch", "dispatch_id": "no-such-id"}, 10) is None
    reply = service.request(
        {"op": "wait_dispatch", "dispatch_id": "no-such-id"}, raw=True, timeout=10
    )
    assert reply["ok"] is False and reply["error_type"] == "DispatchNotFoundError"


def test_a_wait_outlives_the_service_that_ran_the_dispatch(tmp_path: Path):
    """Killed while a client waits: the client reads the store, the next service finishes."""
    gate = tmp_path / "open"
    dispatch_id = ct.dispatch(gated)(str(gate))
    wait_until(lambda: ct.get_result(dispatch_id).get_node(0).job_handle, 60)
    got: list = []
    waiter = threading.Thread(
        target=lambda: got.append(ct.get_result(dispatch_id, wait=True, timeout=120)),
        daemon=True,
    )
    waiter.start()
    time.sleep(0.3)
    first = psutil.Process(int(service.request({"op": "ping"})["pid"]))
    os.kill(first.pid, signal.SIGKILL)
    first.wait(30)
    gate.touch()
    waiter.join(120)
    assert got and got[0].status is ct.Status.COMPLETED and got[0].result == "opened"
    assert int(service.request({"op": "ping"})["pid"]) != first.pid
