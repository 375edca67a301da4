"""The basic tier: results, errors, job handles, cancellation at every point, nothing left."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

import covalent_core as ct

from ..sdk.base import Executor
from . import tasks
from .base import STAGES_AFTER, ConformanceBase, outcome_test
from .observe import read_lines, wait_until


class BasicTier(ConformanceBase):
    """What every executor must pass."""

    # -- basic tier: results -------------------------------------------------------------

    @outcome_test
    def test_returns_value(self, executor: Executor) -> None:
        dispatch_id, _ = self.dispatch_one(tasks.add, executor, 2, 3)
        result = self.finished(dispatch_id)
        assert result.status is ct.Status.COMPLETED, self.failure(result)
        assert result.result == 5

    @outcome_test
    def test_args_and_kwargs(self, executor: Executor) -> None:
        dispatch_id, _ = self.dispatch_one(tasks.combine, executor, 1, b=2, label="sum")
        result = self.finished(dispatch_id)
        assert result.status is ct.Status.COMPLETED, self.failure(result)
        assert result.result == "sum:3"

    @outcome_test
    def test_large_argument_and_result(
        self, executor: Executor, leftovers: Callable[[], list[str]], _local_scratch: set[str]
    ) -> None:
        data = os.urandom(1024) * (self.big_bytes // 1024)
        dispatch_id, _ = self.dispatch_one(tasks.grow, executor, data)
        result = self.finished(dispatch_id)
        assert result.status is ct.Status.COMPLETED, self.failure(result)
        output = result.result
        assert len(output) == len(data) + 1 and output[-1:] == b"!" and output[:4096] == data[:4096]
        self.assert_nothing_left(leftovers, _local_scratch)

    @outcome_test
    def test_exception_carries_the_remote_traceback(self, executor: Executor) -> None:
        dispatch_id, name = self.dispatch_one(tasks.explode, executor, "conformance boom")
        result = self.finished(dispatch_id)
        node = self.task_node(dispatch_id, name)
        assert result.status is ct.Status.FAILED
        assert node.status is ct.Status.FAILED
        assert "ValueError" in (node.error or "") and "conformance boom" in (node.error or "")
        assert "explode" in (node.traceback or ""), f"no remote traceback: {node.traceback!r}"

    @outcome_test
    def test_task_whose_process_dies_fails_clearly(self, executor: Executor) -> None:
        dispatch_id, name = self.dispatch_one(tasks.die, executor)
        self.finished(dispatch_id)
        node = self.task_node(dispatch_id, name)
        assert node.status is ct.Status.FAILED
        assert node.error, "a task whose process died must say so in its error"

    @outcome_test
    def test_job_handle_is_stored_before_the_task_finishes(
        self, executor: Executor, job_alive: Callable[[str], bool]
    ) -> None:
        dispatch_id, name = self.dispatch_one(tasks.nap, executor, 4.0)
        handle = self.stored_handle(dispatch_id, name)
        assert self.task_node(dispatch_id, name).status is ct.Status.RUNNING
        assert job_alive(handle), "the probe does not see the job whose handle was stored"
        result = self.finished(dispatch_id)
        assert result.status is ct.Status.COMPLETED, self.failure(result)
        assert result.result == "rested"

    # -- basic tier: cancellation --------------------------------------------------------

    def test_cancel_before_the_task_starts(
        self,
        executor: Executor,
        job_alive: Callable[[str], bool],
        leftovers: Callable[[], list[str]],
        _local_scratch: set[str],
    ) -> None:
        marker = f"covalent-conformance-{uuid.uuid4().hex}"
        blocker = ct.electron(
            tasks.named(tasks.long_running, f"blocker_{marker[-8:]}"), executor=executor
        )
        victim_name = f"victim_{marker[-8:]}"
        victim = ct.electron(tasks.named(tasks.add, victim_name), executor=executor)

        @ct.lattice
        def conformance(marker: str) -> Any:
            first = blocker(marker)
            second = victim(1, 2)
            ct.wait(second, [first])
            return second

        dispatch_id = self.remember(ct.dispatch(conformance)(marker))
        self.stored_handle(dispatch_id, f"blocker_{marker[-8:]}")
        victim_id = self.task_node(dispatch_id, victim_name).node_id
        ct.cancel(dispatch_id, task_ids=[victim_id], wait=True, timeout=self.task_timeout)
        assert self.task_node(dispatch_id, victim_name).status is ct.Status.CANCELLED
        ct.cancel(dispatch_id, wait=True, timeout=self.task_timeout)
        self.finished(dispatch_id)
        assert self.events(victim_name) == [], "a task cancelled before it started ran stages"
        assert self.task_node(dispatch_id, victim_name).job_handle is None
        self.assert_nothing_left(leftovers, _local_scratch, marker)

    @pytest.mark.parametrize("after", list(STAGES_AFTER))
    @outcome_test
    def test_cancel_between_stages_skips_every_later_stage(
        self,
        after: str,
        executor: Executor,
        leftovers: Callable[[], list[str]],
        _local_scratch: set[str],
    ) -> None:
        name = f"gated_{after}_{uuid.uuid4().hex[:8]}"
        self.hold_after(name, after)
        dispatch_id, _ = self.dispatch_one(tasks.add, executor, 1, 2, name=name)
        wait_until(
            lambda: f"holding:{after}" in self.events(name),
            self.task_timeout,
            f"the task reached the end of {after}",
        )
        if after == "pickle":
            on_resource = leftovers()
            assert on_resource == [], f"the pickle stage already put {on_resource} on the resource"
        node_id = self.task_node(dispatch_id, name).node_id
        ct.cancel(dispatch_id, task_ids=[node_id], wait=True, timeout=self.task_timeout)
        self.finished(dispatch_id)
        node = self.task_node(dispatch_id, name)
        assert node.status is ct.Status.CANCELLED, node.error
        seen = self.events(name)
        ran_after = [s for s in STAGES_AFTER[after] if f"start:{s}" in seen]
        assert ran_after == [], f"cancelled after {after}, yet {ran_after} ran: {seen}"
        assert "start:cleanup" in seen, f"cleanup did not run after the cancel: {seen}"
        order = [*STAGES_AFTER, "fetch"]
        if order.index(after) < order.index(self.job_starts_in):
            assert node.job_handle is None, (
                f"a job was started for a task cancelled before {self.job_starts_in}"
            )
        self.assert_nothing_left(leftovers, _local_scratch)

    def test_cancel_while_running_stops_the_job_within_its_bound(
        self,
        executor: Executor,
        job_alive: Callable[[str], bool],
        leftovers: Callable[[], list[str]],
        _local_scratch: set[str],
    ) -> None:
        dispatch_id, name, handle, marker = self.start_long_task(executor, job_alive)
        self.cancel_within_bound(executor, dispatch_id, name, job_alive, handle)
        seen = self.events(name)
        assert "start:fetch" not in seen and "start:cleanup" in seen, seen
        self.assert_nothing_left(leftovers, _local_scratch, marker)

    def test_a_running_tasks_output_is_read_live_and_kept_after_cancel(
        self, executor: Executor, job_alive: Callable[[str], bool]
    ) -> None:
        dispatch_id, name = self.dispatch_one(tasks.talk_until_cancelled, executor)
        node_id = self.task_node(dispatch_id, name).node_id
        # As a user follows it: the CLI, which reads through the dispatcher service and the
        # executor's covalent_read_output while the task runs.
        follower = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "covalent_core",
                "logs",
                dispatch_id,
                "--task",
                str(node_id),
                "-f",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            seen = read_lines(follower, 3, self.task_timeout)
            assert seen == ["line 0\n", "line 1\n", "line 2\n"], (
                f"logs -f showed {seen!r} while the task ran: is read_output implemented?"
            )
            assert "line 2" in (self.task_node(dispatch_id, name).stdout or "")
            handle = self.stored_handle(dispatch_id, name)
            node = self.cancel_within_bound(executor, dispatch_id, name, job_alive, handle)
            code = follower.wait(self.task_timeout)
            assert code == 3, f"logs -f exited {code}, not 3 (CANCELLED)"
        finally:
            follower.kill()
            follower.wait()
        out = node.stdout or ""
        lines = out.splitlines()[:3]
        assert lines == ["line 0", "line 1", "line 2"], f"the output was lost: {out!r}"

    @outcome_test
    def test_cancel_from_a_fresh_process_uses_only_the_store(
        self,
        executor: Executor,
        job_alive: Callable[[str], bool],
        leftovers: Callable[[], list[str]],
        _local_scratch: set[str],
    ) -> None:
        dispatch_id, name, handle, marker = self.start_long_task(executor, job_alive)
        node_id = self.task_node(dispatch_id, name).node_id
        start = time.monotonic()
        answer = self.fresh_cancel(dispatch_id, node_id)
        assert answer["confirmed"] is True, answer
        # The bound, plus the new interpreter's start-up.
        self.wait_gone(job_alive, handle, start, limit=type(executor).cancel_bound + 5.0)
        self.finished(dispatch_id)
        node = self.task_node(dispatch_id, name)
        # The dispatcher did not ask for this cancel: its job was stopped from outside.
        assert node.status is ct.Status.FAILED, node.status
        self.assert_nothing_left(leftovers, _local_scratch, marker)

    @outcome_test
    def test_cancel_after_completion_changes_nothing(self, executor: Executor) -> None:
        dispatch_id, name = self.dispatch_one(tasks.add, executor, 3, 4)
        assert self.finished(dispatch_id).result == 7
        node = self.task_node(dispatch_id, name)
        report = ct.cancel(dispatch_id, wait=True, timeout=self.task_timeout)
        assert not report.changed_anything
        after = self.task_node(dispatch_id, name)
        assert after.status is ct.Status.COMPLETED and after.output == 7
        # The executor's own cancel of a job that ended confirms without error.
        assert self.fresh_cancel(dispatch_id, node.node_id)["confirmed"] is True
        again, _ = self.dispatch_one(tasks.add, executor, 1, 1)
        assert self.finished(again).result == 2, "the executor broke after a late cancel"

    @outcome_test
    def test_double_cancel_is_harmless(
        self,
        executor: Executor,
        job_alive: Callable[[str], bool],
        leftovers: Callable[[], list[str]],
        _local_scratch: set[str],
    ) -> None:
        dispatch_id, name, handle, marker = self.start_long_task(executor, job_alive)
        node_id = self.task_node(dispatch_id, name).node_id
        first = ct.cancel(dispatch_id, task_ids=[node_id])
        second = ct.cancel(dispatch_id, task_ids=[node_id])
        assert node_id in first.cancelled
        self.wait_gone(job_alive, handle, time.monotonic(), limit=type(executor).cancel_bound)
        self.finished(dispatch_id)
        assert self.task_node(dispatch_id, name).status is ct.Status.CANCELLED
        assert second.dispatch_id == dispatch_id
        assert self.fresh_cancel(dispatch_id, node_id)["confirmed"] is True
        assert self.task_node(dispatch_id, name).status is ct.Status.CANCELLED
        self.assert_nothing_left(leftovers, _local_scratch, marker)

    # -- basic tier: nothing left behind -------------------------------------------------

    @pytest.mark.parametrize("outcome", ["success", "failure", "death"])
    def test_nothing_left_behind(
        self,
        outcome: str,
        executor: Executor,
        leftovers: Callable[[], list[str]],
        _local_scratch: set[str],
    ) -> None:
        function, args = {
            "success": (tasks.add, (1, 1)),
            "failure": (tasks.explode, ("left behind?",)),
            "death": (tasks.die, ()),
        }[outcome]
        dispatch_id, name = self.dispatch_one(function, executor, *args)
        self.finished(dispatch_id)
        assert "start:cleanup" in self.events(name)
        self.assert_nothing_left(leftovers, _local_scratch)
