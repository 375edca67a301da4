"""Executors written against Covalent's interface run here with one changed import.

``TimingExecutor`` is Covalent's how-to on custom executors, with ``from covalent.executor``
changed to ``from covalent_core.executor``. ``StartsAJob`` uses the rest of the interface:
an ``AsyncBaseExecutor`` that starts a job of its own, records its handle with
``set_job_handle``, watches ``get_cancel_requested`` and stops the job in ``cancel``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import wait_until

import covalent_core as ct
from covalent_core.executor import AsyncBaseExecutor, BaseExecutor
from covalent_core.plugins import reset_registry
from covalent_core.sdk.processes import is_dead


class TimingExecutor(BaseExecutor):
    def __init__(self, timing_filepath, **kwargs):
        self.timing_filepath = str(Path(timing_filepath).resolve())
        super().__init__(**kwargs)

    def run(self, function, args, kwargs, task_metadata):
        start = time.process_time()
        result = function(*args, **kwargs)
        time_taken = time.process_time() - start
        with open(f"{self.timing_filepath}", "a") as f:
            f.writelines(
                f"Node {task_metadata['node_id']} in dispatch {task_metadata['dispatch_id']} "
                f"took {time_taken}s of CPU time."
            )
        return result


class StartsAJob(AsyncBaseExecutor):
    def __init__(self, record, **kwargs):
        self.record = record
        super().__init__(**kwargs)

    async def run(self, function, args, kwargs, task_metadata):
        job = subprocess.Popen(["sleep", "600"], start_new_session=True)
        await self.set_job_handle({"pid": job.pid})
        print(f"job {job.pid} started", file=self.task_stdout)
        while job.poll() is None:
            if await self.get_cancel_requested():
                return "saw the cancel"
            time.sleep(0.05)
        return function(*args, **kwargs)

    async def cancel(self, task_metadata, job_handle):
        os.kill(job_handle["pid"], 9)
        with open(self.record, "w") as fh:
            json.dump({"metadata": task_metadata, "handle": job_handle}, fh)
        return True


def square(x):
    return x * x


def test_covalents_custom_executor_how_to_runs(tmp_path):
    timing = tmp_path / "timing.txt"
    task = ct.electron(square, executor=TimingExecutor(timing_filepath=str(timing)))

    @ct.lattice
    def workflow(x):
        return task(x)

    dispatch_id = ct.dispatch(workflow)(7)
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.status == ct.Result.COMPLETED, result
    assert result.result == 49
    assert timing.read_text().startswith(f"Node 0 in dispatch {dispatch_id} took ")
    assert result.get_node(0).executor == "covalent"


def test_cancel_reaches_a_custom_executors_job_through_its_own_cancel(tmp_path):
    record = tmp_path / "cancelled.json"
    task = ct.electron(square, executor=StartsAJob(record=str(record)))

    @ct.lattice
    def workflow(x):
        return task(x)

    dispatch_id = ct.dispatch(workflow)(3)
    handle = wait_until(lambda: ct.get_result(dispatch_id).get_node(0).job_handle, 60)
    job_file = Path(handle["dir"]) / "job_handle.json"
    pid = json.loads(wait_until(lambda: job_file.exists() and job_file.read_text(), 60))["pid"]
    ct.cancel(dispatch_id)
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert result.get_node(0).status == ct.Result.CANCELLED
    called = json.loads(record.read_text())
    assert called["handle"] == {"pid": pid}
    assert called["metadata"]["dispatch_id"] == dispatch_id and called["metadata"]["node_id"] == 0
    assert is_dead(pid)  # the executor's own job
    assert is_dead(handle["pid"])  # and the process that ran the executor
    assert not Path(handle["dir"]).exists()  # cleaned up


def test_a_module_with_executor_plugin_name_is_an_executor_by_short_name(tmp_path, monkeypatch):
    module = tmp_path / "doubling_plugin.py"
    module.write_text(
        textwrap.dedent(
            """
            from covalent_core.executor.base import BaseExecutor

            EXECUTOR_PLUGIN_NAME = "DoublingExecutor"


            class DoublingExecutor(BaseExecutor):
                def __init__(self, factor=2, **kwargs):
                    self.factor = factor
                    super().__init__(**kwargs)

                def run(self, function, args, kwargs, task_metadata):
                    return self.factor * function(*args, **kwargs)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    extra = os.environ.get("COVALENT_CORE_EXTRA_PLUGINS", "")
    monkeypatch.setenv("COVALENT_CORE_EXTRA_PLUGINS", f"{extra},doubling_plugin")
    reset_registry()
    try:
        assert ct.executor.DoublingExecutor.short_name == "doubling_plugin"
        task = ct.electron(square, executor="doubling_plugin")

        @ct.lattice
        def workflow(x):
            return task(x)

        result = ct.get_result(ct.dispatch(workflow)(5), wait=True, timeout=60)
        assert result.result == 50
    finally:
        monkeypatch.undo()
        reset_registry()
        sys.modules.pop("doubling_plugin", None)


def test_an_executor_that_cannot_be_pickled_is_refused_at_dispatch():
    class Holding(BaseExecutor):
        def __init__(self):
            import threading

            self.lock = threading.Lock()
            super().__init__()

        def run(self, function, args, kwargs, task_metadata):
            return function(*args, **kwargs)

    task = ct.electron(square, executor=Holding())

    @ct.lattice
    def workflow(x):
        return task(x)

    with pytest.raises(ct.ExecutorConfigError, match="cannot be pickled"):
        ct.dispatch(workflow)(2)


def test_a_covalent_style_executors_task_outlives_a_killed_dispatcher(tmp_path):
    from covalent_core.testing import kill_service

    timing = tmp_path / "timing.txt"

    def slow_square(x):
        import time as _time

        _time.sleep(3)
        return x * x

    @ct.lattice
    def flow(x):
        return ct.electron(slow_square, executor=TimingExecutor(timing))(x)

    dispatch_id = ct.dispatch(flow)(7)
    wait_until(lambda: ct.get_result(dispatch_id).get_node(0).job_handle, 60)
    kill_service()
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED, result.error
    assert result.result == 49
    assert result.get_node(0).reattached_by
    assert timing.read_text().count("took") == 1  # it ran once


def where(x, setup=None, path=""):
    return [x, setup, Path(path).read_text()]


def test_a_covalent_style_executor_runs_the_tasks_environment(tmp_path):
    step_file = tmp_path / "step.txt"
    after = tmp_path / "after.txt"
    task = ct.electron(
        where,
        executor=TimingExecutor(timing_filepath=str(tmp_path / "timing.txt")),
        deps_bash=[f"printf 'from bash' > {shlex.quote(str(step_file))}"],
        call_before=ct.DepsCall(str.upper, ["prepared"], retval_keyword="setup"),
        call_after=ct.DepsCall(Path.write_text, [after, "after"]),
    )
    failing = ct.electron(
        square,
        executor=TimingExecutor(timing_filepath=str(tmp_path / "timing.txt")),
        deps_bash="echo no such tool >&2; exit 9",
    )

    @ct.lattice
    def workflow(x):
        return task(x, path=str(step_file))

    @ct.lattice
    def broken(x):
        return failing(x)

    result = ct.get_result(ct.dispatch(workflow)(5), wait=True, timeout=60)
    assert result.status == ct.Result.COMPLETED, result.get_node(0).error
    assert result.result == [5, "PREPARED", "from bash"]
    assert after.read_text() == "after"
    result = ct.get_result(ct.dispatch(broken)(5), wait=True, timeout=60)
    error = result.get_node(0).error
    assert result.status == ct.Result.FAILED
    assert "DepsBash" in error and "status 9" in error and "no such tool" in error, error
