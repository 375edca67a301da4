"""The executor conformance suite: what every executor must do, cancellation first.

Subclass :class:`ExecutorConformance` in a plugin's tests and override three fixtures::

    from covalent_core.testing import ExecutorConformance

    class TestMyExecutor(ExecutorConformance):
        @pytest.fixture
        def executor(self):
            return MyExecutor(root=...)

        @pytest.fixture
        def job_alive(self, executor):
            return lambda handle: my_resource_says_running(handle)

        @pytest.fixture
        def leftovers(self, executor):
            return lambda: list_what_my_executor_left_on_the_resource()

Each test dispatches real workflows through the real dispatcher service (in a private data
directory) and checks facts on the resource: the probe says the job is gone, the listing is
empty, the stage never ran. Capability flags (class attributes) switch optional tests on.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest

import covalent_core as ct

from ..executors.base import Executor
from . import gate, tasks
from .env import isolated_store

STAGES_AFTER = {
    "pickle": ["upload", "provision", "run", "fetch"],
    "upload": ["provision", "run", "fetch"],
    "provision": ["run", "fetch"],
    "run": ["fetch"],
}


def wait_until(
    check: Callable[[], Any],
    timeout: float = 30.0,
    what: str = "the condition held",
    interval: float = 0.02,
) -> Any:
    """Return the first truthy ``check()``; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


def dispatch_task(
    function: Callable[..., Any],
    executor: Executor | str,
    *args: Any,
    timeout: float | None = None,
    **kwargs: Any,
) -> str:
    """Dispatch a workflow of one task, ``function(*args, **kwargs)``; its node id is 0."""
    task = ct.electron(function, executor=executor, timeout=timeout)

    @ct.lattice
    def one_task(*a: Any, **kw: Any) -> Any:
        return task(*a, **kw)

    return ct.dispatch(one_task)(*args, **kwargs)


def finished_task(dispatch_id: str, timeout: float = 120.0) -> ct.NodeResult:
    """Wait for a :func:`dispatch_task` dispatch to end; its task's node."""
    return ct.get_result(dispatch_id, wait=True, timeout=timeout).get_node(0)


def marker_processes(marker: str) -> list[str]:
    """Processes on this machine whose command line carries ``marker``."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = proc.info.get("cmdline") or []
        if marker in cmdline and proc.info.get("status") != psutil.STATUS_ZOMBIE:
            found.append(f"pid {proc.info['pid']}: {' '.join(cmdline)}")
    return found


class ExecutorConformance:
    """The base class of an executor's conformance tests. See the module docstring."""

    # -- capability flags and knobs ------------------------------------------------------

    supports_timeouts: ClassVar[bool] = True
    """Run the optional test that an electron's ``timeout=`` stops the job."""
    supports_packing: ClassVar[bool] = False
    """Run the optional packed-tasks test; override ``packed_executor`` too."""
    job_starts_in: ClassVar[str] = "run"
    """The stage that creates the job on the resource ("provision" for a batch submission)."""
    resource_is_local: ClassVar[bool] = True
    """Tasks run on this machine: the suite also looks for stray task processes itself."""
    extra_plugins: ClassVar[tuple[str, ...]] = ()
    """Plugin modules to load into the dispatcher that are not installed as packages."""
    settle_seconds: ClassVar[float] = 1.0
    """How long to wait after a task ended before checking nothing appeared late."""
    task_timeout: ClassVar[float] = 120.0
    """The longest a single short task may take on the resource (a hang guard, not a bound)."""
    big_bytes: ClassVar[int] = 50 * 2**20
    """Size of the large argument and result."""
    local_scratch_ignore: ClassVar[tuple[str, ...]] = ("pytest-of-", "covalent-core-")
    """Prefixes of entries in the system temp directory that are not the executor's."""

    # -- the three fixtures a plugin overrides -------------------------------------------

    @pytest.fixture
    def executor(self) -> Executor:
        """A configured executor instance, as a user would pass it to ``@ct.electron``."""
        raise NotImplementedError("override the `executor` fixture")

    @pytest.fixture
    def job_alive(self, executor: Executor) -> Callable[[str], bool]:
        """A probe: does the resource itself say the job with this stored handle still runs?"""
        raise NotImplementedError("override the `job_alive` fixture")

    @pytest.fixture
    def leftovers(self, executor: Executor) -> Callable[[], list[str]]:
        """What the executor has left on the resource (files, jobs, processes); [] when clean."""
        raise NotImplementedError("override the `leftovers` fixture")

    @pytest.fixture
    def packed_executor(self) -> Executor:
        """An executor that packs tasks into one job (needed when ``supports_packing``)."""
        pytest.skip("this executor declares no packing support")

    # -- environment ---------------------------------------------------------------------

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _conformance_store(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
        """A private data directory and dispatcher service with the suite's gate loaded."""
        data = tmp_path_factory.mktemp("conformance")
        with isolated_store(data, (gate.__name__, *cls.extra_plugins)):
            yield data

    @pytest.fixture(autouse=True)
    def _stop_what_was_started(self) -> Iterator[None]:
        """After each test, cancel whatever it dispatched that is still running."""
        self._dispatched: list[str] = []
        yield
        for dispatch_id in self._dispatched:
            with contextlib.suppress(Exception):
                if not ct.get_result(dispatch_id).is_finished:
                    ct.cancel(dispatch_id, wait=True, timeout=30)

    @pytest.fixture(autouse=True)
    def _local_scratch(self) -> Iterator[set[str]]:
        """Entries of the system temp directory before the test, to spot new ones after."""
        yield self._scratch_entries()

    # -- helpers -------------------------------------------------------------------------

    def _scratch_entries(self) -> set[str]:
        root = Path(tempfile.gettempdir())
        return {p.name for p in root.iterdir() if not p.name.startswith(self.local_scratch_ignore)}

    def dispatch_one(
        self,
        function: Callable[..., Any],
        executor: Executor,
        *args: Any,
        name: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> tuple[str, str]:
        """Dispatch a one-task workflow; return (dispatch id, the task's unique name)."""
        name = name or f"{function.__name__}_{uuid.uuid4().hex[:8]}"
        named = tasks.named(function, name)
        return self.remember(dispatch_task(named, executor, *args, timeout=timeout, **kwargs)), name

    def remember(self, dispatch_id: str) -> str:
        """Note a dispatch so that teardown cancels it if the test left it running."""
        self._dispatched.append(dispatch_id)
        return dispatch_id

    def task_node(self, dispatch_id: str, name: str) -> ct.NodeResult:
        """The node called ``name``, as stored now."""
        for node in ct.get_result(dispatch_id).tasks:
            if node.name == name:
                return node
        raise AssertionError(f"dispatch {dispatch_id} has no task named {name!r}")

    def stored_handle(self, dispatch_id: str, name: str) -> str:
        """Wait for the task's job handle to be stored; return it as stored (text)."""

        def handle() -> str | None:
            value = self.task_node(dispatch_id, name).job_handle
            if value is None or isinstance(value, str):
                return value
            return json.dumps(value, sort_keys=True)

        return wait_until(handle, self.task_timeout, f"the job handle of {name} was stored")

    def failure(self, result: ct.Result) -> str:
        """Every failed node's error, for assertion messages."""
        errors = [f"{n.name}: {n.error}" for n in result.tasks if n.error]
        return "; ".join(errors) or str(result.error)

    def finished(self, dispatch_id: str) -> ct.Result:
        """Wait for the dispatch to end (hang guard: ``task_timeout``)."""
        return ct.get_result(dispatch_id, wait=True, timeout=self.task_timeout)

    def events(self, name: str) -> list[str]:
        """The stages the gate saw for the task, in order (``start:upload``, ``end:run``...)."""
        path = gate.gate_dir() / "events" / f"{name}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line)["event"] for line in path.read_text().splitlines() if line]

    def hold_after(self, name: str, stage: str) -> None:
        """Make the task wait once ``stage`` has finished, until released or cancelled."""
        rules = gate.gate_dir() / "rules"
        rules.mkdir(parents=True, exist_ok=True)
        (rules / name).write_text(f"after:{stage}")

    def fresh_cancel(self, dispatch_id: str, node_id: int) -> dict[str, Any]:
        """Cancel the node's job from a new Python process that has only the store."""
        proc = subprocess.run(
            [sys.executable, "-m", "covalent_core.testing.fresh_cancel", dispatch_id, str(node_id)],
            capture_output=True,
            text=True,
            timeout=self.task_timeout,
            env=dict(os.environ),
        )
        assert proc.returncode == 0, f"cancel from a fresh process failed:\n{proc.stderr}"
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def assert_nothing_left(
        self, leftovers: Callable[[], list[str]], before: set[str], marker: str | None = None
    ) -> None:
        """Nothing on the resource, no stray task process, no new local temp entries."""
        time.sleep(self.settle_seconds)
        left = leftovers()
        assert left == [], f"the executor left this behind on the resource: {left}"
        if marker is not None and self.resource_is_local:
            stray = marker_processes(marker)
            assert stray == [], f"task processes still running: {stray}"
        new = sorted(self._scratch_entries() - before)
        assert new == [], f"new entries left in {tempfile.gettempdir()}: {new}"

    def start_long_task(
        self, executor: Executor, job_alive: Callable[[str], bool], timeout: float | None = None
    ) -> tuple[str, str, str, str]:
        """Dispatch a task that runs ten minutes; return (dispatch, name, handle, marker)
        once the resource says it runs."""
        marker = f"covalent-conformance-{uuid.uuid4().hex}"
        dispatch_id, name = self.dispatch_one(tasks.long_running, executor, marker, timeout=timeout)
        handle = self.stored_handle(dispatch_id, name)
        wait_until(lambda: job_alive(handle), self.task_timeout, "the probe saw the job alive")
        if self.resource_is_local:
            wait_until(
                lambda: marker_processes(marker), self.task_timeout, "the task started its child"
            )
        return dispatch_id, name, handle, marker

    def wait_gone(
        self, job_alive: Callable[[str], bool], handle: str, start: float, limit: float
    ) -> float:
        """Seconds from ``start`` until the probe says the job is gone; fail after ``limit``."""
        deadline = start + limit
        while job_alive(handle):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the resource still runs job {handle} {limit:g} s after the cancel "
                    "(the executor's cancel did not stop it)"
                )
            time.sleep(0.02)
        return time.monotonic() - start

    # -- basic tier: results -------------------------------------------------------------

    def test_returns_value(self, executor: Executor) -> None:
        dispatch_id, _ = self.dispatch_one(tasks.add, executor, 2, 3)
        result = self.finished(dispatch_id)
        assert result.status is ct.Status.COMPLETED, self.failure(result)
        assert result.result == 5

    def test_args_and_kwargs(self, executor: Executor) -> None:
        dispatch_id, _ = self.dispatch_one(tasks.combine, executor, 1, b=2, label="sum")
        result = self.finished(dispatch_id)
        assert result.status is ct.Status.COMPLETED, self.failure(result)
        assert result.result == "sum:3"

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

    def test_exception_carries_the_remote_traceback(self, executor: Executor) -> None:
        dispatch_id, name = self.dispatch_one(tasks.explode, executor, "conformance boom")
        result = self.finished(dispatch_id)
        node = self.task_node(dispatch_id, name)
        assert result.status is ct.Status.FAILED
        assert node.status is ct.Status.FAILED
        assert "ValueError" in (node.error or "") and "conformance boom" in (node.error or "")
        assert "explode" in (node.traceback or ""), f"no remote traceback: {node.traceback!r}"

    def test_task_whose_process_dies_fails_clearly(self, executor: Executor) -> None:
        dispatch_id, name = self.dispatch_one(tasks.die, executor)
        self.finished(dispatch_id)
        node = self.task_node(dispatch_id, name)
        assert node.status is ct.Status.FAILED
        assert node.error, "a task whose process died must say so in its error"

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
        start = time.monotonic()
        ct.cancel(dispatch_id)
        bound = type(executor).cancel_bound
        self.wait_gone(job_alive, handle, start, limit=bound)
        result = self.finished(dispatch_id)
        node = self.task_node(dispatch_id, name)
        assert node.status is ct.Status.CANCELLED, node.error
        assert result.status is ct.Status.CANCELLED
        seen = self.events(name)
        assert "start:fetch" not in seen and "start:cleanup" in seen, seen
        self.assert_nothing_left(leftovers, _local_scratch, marker)

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

    # -- optional tier -------------------------------------------------------------------

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
        handle = self.stored_handle(dispatch_id, name)
        self.finished(dispatch_id)
        node = self.task_node(dispatch_id, name)
        assert node.status is ct.Status.CANCELLED
        assert node.cancel_reason == ct.CancelReason.TIMEOUT.value
        assert not job_alive(handle)
        self.assert_nothing_left(leftovers, _local_scratch, marker)

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
