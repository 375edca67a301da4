"""The containment tier: every process a task starts dies with it (``contains_processes``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

import covalent_core as ct

from ..sdk.base import Executor
from . import tasks
from .base import ConformanceBase
from .observe import marker_processes, wait_until


class ContainmentTier(ConformanceBase):
    """A task's double-forked daemon (new session, parent gone) dies when the task returns
    and when it is cancelled. Executors that run no processes of the task's on this machine,
    or cannot contain them, set ``contains_processes = False`` and say why in their docs."""

    def _skip_unless_contained(self) -> None:
        if not self.contains_processes:
            pytest.skip("this executor declares that it does not contain task processes")

    def _wait_gone(self, marker: str) -> None:
        wait_until(lambda: not marker_processes(marker), self.task_timeout)

    def test_a_daemon_dies_when_its_task_returns(self, executor: Executor) -> None:
        self._skip_unless_contained()
        marker = f"covalent-conformance-{uuid.uuid4().hex}"
        dispatch_id, name = self.dispatch_one(tasks.daemonize, executor, marker, 1.0)
        result = self.finished(dispatch_id)
        assert result.status is ct.Status.COMPLETED, self.task_node(dispatch_id, name).error
        self._wait_gone(marker)

    def test_a_daemon_dies_when_its_task_is_cancelled(
        self, executor: Executor, job_alive: Callable[[str], bool]
    ) -> None:
        self._skip_unless_contained()
        marker = f"covalent-conformance-{uuid.uuid4().hex}"
        dispatch_id, name = self.dispatch_one(tasks.daemonize, executor, marker, 600.0)
        wait_until(lambda: marker_processes(marker), self.task_timeout)
        handle = self.stored_handle(dispatch_id, name)
        ct.cancel(dispatch_id, wait=True, timeout=self.task_timeout)
        assert not job_alive(handle)
        self._wait_gone(marker)
