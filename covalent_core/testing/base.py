"""The base of the conformance suite: capability flags, the fixtures a plugin overrides, helpers.

The tests themselves are in tiers (:mod:`.basic`, :mod:`.optional`);
:class:`~covalent_core.testing.suite.ExecutorConformance` combines them.
"""

from __future__ import annotations

import contextlib
import functools
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

import pytest

import covalent_core as ct

from ..sdk.base import Executor
from . import gate, tasks
from .isolation import isolated_store
from .observe import dispatch_task, marker_processes, wait_until

STAGES_AFTER = {
    "pickle": ["upload", "provision", "run", "fetch"],
    "upload": ["provision", "run", "fetch"],
    "provision": ["run", "fetch"],
    "run": ["fetch"],
}


def outcome_test(test: Callable[..., None]) -> Callable[..., None]:
    """Mark a conformance test that checks only outcomes (skipped when ``checks_outcomes`` is
    off)."""

    @functools.wraps(test)
    def run(self: ConformanceBase, *args: Any, **kwargs: Any) -> None:
        if not self.checks_outcomes:
            pytest.skip("this run looks only for what tasks leave behind")
        test(self, *args, **kwargs)

    return run


class ConformanceBase:
    """Flags, fixtures and helpers every tier of the conformance suite shares."""

    # -- capability flags and knobs ------------------------------------------------------

    supports_timeouts: ClassVar[bool] = True
    """Run the optional test that an electron's ``timeout=`` stops the job."""
    contains_processes: ClassVar[bool] = True
    """Run the containment tier: a task's double-forked daemon dies with the task."""
    supports_packing: ClassVar[bool] = False
    """Run the optional packed-tasks test; override ``packed_executor`` too."""
    job_starts_in: ClassVar[str] = "run"
    """The stage that creates the job on the resource ("provision" for a batch submission)."""
    resource_is_local: ClassVar[bool] = True
    """Tasks run on this machine: the suite also looks for stray task processes itself."""
    extra_plugins: ClassVar[tuple[str, ...]] = ()
    """Plugin modules to load into the dispatcher that are not installed as packages."""
    settle_seconds: ClassVar[float] = 1.0
    teardown_seconds: ClassVar[float] = 0.0
    """How long the resource may take to tear down a cancelled job on its own (a Slurm job
    stays COMPLETING a while): the nothing-left checks wait that long for it to go."""
    """How long to wait after a task ended before checking nothing appeared late."""
    task_timeout: ClassVar[float] = 120.0
    """The longest a single short task may take on the resource (a hang guard, not a bound)."""
    big_bytes: ClassVar[int] = 50 * 2**20
    """Size of the large argument and result."""
    local_scratch_ignore: ClassVar[tuple[str, ...]] = ()
    """Prefixes of entries in the private temporary directory that are not the executor's."""
    checks_outcomes: ClassVar[bool] = True
    """Run the tests that check only what a task returns, raises or is marked (off for a
    second run that looks only for what tasks leave behind, beside a busy neighbour)."""

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
        """Entries of the private temporary directory (TMPDIR of the dispatcher and every
        process it starts) before the test, to spot new ones after."""
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
        environment: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> tuple[str, str]:
        """Dispatch a one-task workflow; return (dispatch id, the task's unique name).

        ``environment``: the electron's ``deps_bash``, ``call_before``, ... (by keyword)."""
        name = name or f"{function.__name__}_{uuid.uuid4().hex[:8]}"
        named = tasks.named(function, name)
        dispatch_id = dispatch_task(
            named, executor, *args, timeout=timeout, environment=environment, **kwargs
        )
        return self.remember(dispatch_id), name

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
            return None if value is None else self.handle_text(value)

        return wait_until(handle, self.task_timeout, f"the job handle of {name} was stored")

    @staticmethod
    def handle_text(value: Any) -> str:
        """A node's job handle as the executor stored it (JSON text)."""
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)

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

    def release(self, name: str) -> None:
        """Let a task held by :meth:`hold_after` go on (now, and in any later service)."""
        released = gate.gate_dir() / "release"
        released.mkdir(parents=True, exist_ok=True)
        (released / name).write_text("")

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
        """Nothing on the resource, no stray task process, no new local temp entries.

        What the resource is still tearing down (a Slurm job COMPLETING, say) is given
        :attr:`teardown_seconds` to go; what is left after that was left behind."""
        time.sleep(self.settle_seconds)
        left = leftovers()
        give_up = time.monotonic() + self.teardown_seconds
        while left and time.monotonic() < give_up:
            time.sleep(0.5)
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
        return dispatch_id, name, self.running_handle(dispatch_id, name, job_alive, marker), marker

    def running_handle(
        self, dispatch_id: str, name: str, job_alive: Callable[[str], bool], marker: str = ""
    ) -> str:
        """The task's stored handle, once the probe says its job runs (and, on this machine,
        once a process carries ``marker``)."""
        handle = self.stored_handle(dispatch_id, name)
        wait_until(lambda: job_alive(handle), self.task_timeout, "the probe saw the job alive")
        if marker and self.resource_is_local:
            wait_until(
                lambda: marker_processes(marker), self.task_timeout, "the task started its child"
            )
        return handle

    def cancel_within_bound(
        self,
        executor: Executor,
        dispatch_id: str,
        name: str,
        job_alive: Callable[[str], bool],
        handle: str,
    ) -> ct.NodeResult:
        """Cancel the running dispatch; fail unless its job is gone within the executor's
        ``cancel_bound`` and the task and dispatch end CANCELLED. The task's node."""
        start = time.monotonic()
        ct.cancel(dispatch_id)
        self.wait_gone(job_alive, handle, start, limit=type(executor).cancel_bound)
        result = self.finished(dispatch_id)
        node = self.task_node(dispatch_id, name)
        assert node.status is ct.Status.CANCELLED, node.error
        assert result.status is ct.Status.CANCELLED
        return node

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
