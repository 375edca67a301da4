"""Optional tiers: an executor declares what it supports with capability flags."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

import covalent_core as ct

from ..sdk.base import Executor
from . import tasks
from .base import ConformanceBase


class TimeoutTier(ConformanceBase):
    """``timeout=`` on an electron stops its job (``supports_timeouts``, default True)."""

    def test_timeout_stops_the_job(
        self,
        executor: Executor,
        job_alive: Callable[[str], bool],
        leftovers: Callable[[], list[str]],
        _local_scratch: set[str],
    ) -> None:
        if not self.supports_timeouts:
            pytest.skip("this executor declares no timeout support")
        marker = f"covalent-conformance-{uuid.uuid4().hex}"
        dispatch_id, name = self.dispatch_one(tasks.long_running, executor, marker, timeout=3.0)
        self.finished(dispatch_id)
        node = self.task_node(dispatch_id, name)
        assert node.status is ct.Status.CANCELLED, f"{node.status}: {node.error}"
        assert node.cancel_reason == ct.CancelReason.TIMEOUT.value
        # On a busy machine the 3 s can pass before the job even has a handle (a job never
        # starts before it has one): then there is no job to look at, and nothing may be left.
        if node.job_handle is not None:
            assert not job_alive(self.handle_text(node.job_handle))
        self.assert_nothing_left(leftovers, _local_scratch, marker)


class PackingTier(ConformanceBase):
    """Tasks packed into one job share its handle and are cancelled together
    (``supports_packing`` and a ``packed_executor`` fixture)."""

    def test_packed_tasks_share_a_job_and_cancel_together(
        self, packed_executor: Executor, job_alive: Callable[[str], bool]
    ) -> None:
        if not self.supports_packing:
            pytest.skip("this executor declares no packing support")
        marker = f"covalent-conformance-{uuid.uuid4().hex}"
        first = ct.electron(
            tasks.named(tasks.long_running, f"packed_a_{marker[-8:]}"), executor=packed_executor
        )
        second = ct.electron(
            tasks.named(tasks.long_running, f"packed_b_{marker[-8:]}"), executor=packed_executor
        )

        @ct.lattice
        def conformance(marker: str) -> Any:
            return [first(marker), second(marker)]

        dispatch_id = self.remember(ct.dispatch(conformance)(marker))
        handle_a = self.stored_handle(dispatch_id, f"packed_a_{marker[-8:]}")
        handle_b = self.stored_handle(dispatch_id, f"packed_b_{marker[-8:]}")
        assert handle_a == handle_b, "packed tasks must share one job handle"
        node_a = self.task_node(dispatch_id, f"packed_a_{marker[-8:]}").node_id
        ct.cancel(dispatch_id, task_ids=[node_a])
        self.wait_gone(
            job_alive, handle_a, time.monotonic(), limit=type(packed_executor).cancel_bound
        )
        self.finished(dispatch_id)
        for suffix in ("a", "b"):
            node = self.task_node(dispatch_id, f"packed_{suffix}_{marker[-8:]}")
            assert node.status is ct.Status.CANCELLED, (suffix, node.status, node.error)
