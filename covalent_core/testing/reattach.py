"""The re-attach tier: the dispatcher service is killed (SIGKILL) while a task runs.

The next service must take the job over where it is: wait for it and fetch its result (the
same job, never a second one), keep a result the job produced while no service ran, apply a
cancel that was stored meanwhile, and start once a task that had not started.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import ClassVar

import pytest

import covalent_core as ct

from ..cancel_requests import request_cancel
from ..sdk.base import Executor
from . import tasks
from .base import STAGES_AFTER, ConformanceBase
from .observe import kill_service, service_pid, wait_until

NO_REATTACH = "no re-attach support declared; test_reattach_to_a_running_job checks the fallback"


class ReattachTier(ConformanceBase):
    """A killed dispatcher costs no job (``supports_reattach``, default True).

    An executor without ``reattach`` sets ``supports_reattach = False``: the tier then checks
    the fallback instead, that its job is stopped and the node fails with reason
    ``dispatcher lost``.
    """

    supports_reattach: ClassVar[bool] = True
    reattach_nap: ClassVar[float] = 8.0
    """Seconds the re-attached task sleeps: long enough to kill the service while it runs."""

    def _same_job_finished(self, dispatch_id: str, name: str, handle: str) -> ct.NodeResult:
        result = self.finished(dispatch_id)
        node = self.task_node(dispatch_id, name)
        assert result.status is ct.Status.COMPLETED, self.failure(result)
        assert result.result == "rested"
        assert self.stored_handle(dispatch_id, name) == handle, (
            "the task finished in another job than the one it started in: it ran twice"
        )
        assert node.reattached_by is not None, "the store does not say the job was re-attached"
        return node

    def test_reattach_to_a_running_job(
        self,
        executor: Executor,
        job_alive: Callable[[str], bool],
        leftovers: Callable[[], list[str]],
        _local_scratch: set[str],
    ) -> None:
        dispatch_id, name = self.dispatch_one(tasks.nap, executor, self.reattach_nap)
        handle = self.running_handle(dispatch_id, name, job_alive)
        kill_service()
        assert job_alive(handle), "the job died with the dispatcher service"
        if not self.supports_reattach:
            self.finished(dispatch_id)
            node = self.task_node(dispatch_id, name)
            assert node.status is ct.Status.FAILED
            assert node.cancel_reason == ct.CancelReason.DISPATCHER_LOST.value
            assert not job_alive(handle), "an executor that cannot re-attach left its job running"
            return
        self._same_job_finished(dispatch_id, name, handle)
        seen = self.events(name)
        assert "start:reattach" in seen and seen.count("start:run") <= 1, seen
        self.assert_nothing_left(leftovers, _local_scratch)

    def test_a_job_that_ends_while_no_service_runs_keeps_its_result(
        self,
        executor: Executor,
        job_alive: Callable[[str], bool],
        leftovers: Callable[[], list[str]],
        _local_scratch: set[str],
    ) -> None:
        if not self.supports_reattach:
            pytest.skip(NO_REATTACH)
        dispatch_id, name = self.dispatch_one(tasks.nap, executor, 3.0)
        handle = self.stored_handle(dispatch_id, name)
        kill_service()
        wait_until(lambda: not job_alive(handle), self.task_timeout, "the job ended on its own")
        assert service_pid() is None, "something started a service while the job ran"
        self._same_job_finished(dispatch_id, name, handle)
        self.assert_nothing_left(leftovers, _local_scratch)

    def test_a_cancel_stored_while_no_service_runs_stops_the_job(
        self,
        executor: Executor,
        job_alive: Callable[[str], bool],
        leftovers: Callable[[], list[str]],
        _local_scratch: set[str],
    ) -> None:
        if not self.supports_reattach:
            pytest.skip(NO_REATTACH)
        dispatch_id, name, handle, marker = self.start_long_task(executor, job_alive)
        kill_service()
        request_cancel(dispatch_id)  # the durable flag only; no service hears of it
        assert job_alive(handle), "the job died with the dispatcher service"
        self.finished(dispatch_id)  # a client that waits starts the next service
        node = self.task_node(dispatch_id, name)
        assert node.status is ct.Status.CANCELLED, node.error
        assert not job_alive(handle), "the cancelled job still runs on the resource"
        self.assert_nothing_left(leftovers, _local_scratch, marker)

    def test_a_task_whose_job_had_not_started_starts_once(
        self,
        executor: Executor,
        leftovers: Callable[[], list[str]],
        _local_scratch: set[str],
    ) -> None:
        if not self.supports_reattach:
            pytest.skip(NO_REATTACH)
        order = [*STAGES_AFTER, "fetch"]
        before = order[order.index(self.job_starts_in) - 1]
        name = f"unstarted_{uuid.uuid4().hex[:8]}"
        self.hold_after(name, before)
        dispatch_id, _ = self.dispatch_one(tasks.nap, executor, 0.5, name=name)
        wait_until(
            lambda: f"holding:{before}" in self.events(name),
            self.task_timeout,
            f"the task reached the end of {before}",
        )
        kill_service()
        self.release(name)
        result = self.finished(dispatch_id)
        assert result.status is ct.Status.COMPLETED, self.failure(result)
        seen = self.events(name)
        assert seen.count(f"start:{self.job_starts_in}") == 1, (
            f"the stage that starts the job ran other than once: {seen}"
        )
        self.assert_nothing_left(leftovers, _local_scratch)
