"""The environment tier: a task's ``DepsBash``, ``DepsCall``, ``call_before`` and
``call_after`` run on the resource, in the task's environment, inside its cancellable part."""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Callable

import covalent_core as ct

from ..sdk.base import Executor
from . import tasks
from .base import ConformanceBase

# A dependency step's output that a shell would mangle if our side spliced it anywhere.
AWKWARD = "a;b|c&&d $(false) `id` 'single' \"double\" \\back * ? ~ $HOME !x\nline two\t"
AWKWARD_LINE = AWKWARD.split("\n")[0]


class EnvironmentTier(ConformanceBase):
    """What an electron declares about where it runs happens there, around the task."""

    def test_deps_bash_and_call_before_prepare_the_task_where_it_runs(
        self, executor: Executor
    ) -> None:
        filename = f"covalent-conformance-{uuid.uuid4().hex}"
        write = f'printf %s {shlex.quote(AWKWARD)} > "${{TMPDIR:-/tmp}}/{filename}"'
        environment = {
            "deps_bash": [write],
            "call_before": [
                ct.DepsCall(tasks.where_prepared, ["tag"], retval_keyword="setup"),
            ],
        }
        dispatch_id, _ = self.dispatch_one(
            tasks.read_prepared, executor, filename, environment=environment
        )
        result = self.finished(dispatch_id)
        assert result.status is ct.Status.COMPLETED, self.failure(result)
        seen = result.result
        assert seen["file"] == AWKWARD, "the DepsBash command's output did not arrive intact"
        assert seen["setup"]["tag"] == "tag"
        assert seen["setup"]["pid"] == seen["pid"], "call_before ran in another process"

    def test_call_after_runs_after_the_task_returned(self, executor: Executor) -> None:
        word = uuid.uuid4().hex
        environment = {"call_after": ct.DepsCall(tasks.say, [f"after-{word}"])}
        dispatch_id, name = self.dispatch_one(
            tasks.say, executor, f"task-{word}", environment=environment
        )
        result = self.finished(dispatch_id)
        assert result.status is ct.Status.COMPLETED, self.failure(result)
        out = self.task_node(dispatch_id, name).stdout or ""
        assert f"task-{word}" in out and f"after-{word}" in out, out
        assert out.index(f"task-{word}") < out.index(f"after-{word}"), out

    def test_call_after_does_not_run_when_the_task_failed(self, executor: Executor) -> None:
        word = uuid.uuid4().hex
        environment = {"call_after": ct.DepsCall(tasks.say, [f"after-{word}"])}
        dispatch_id, name = self.dispatch_one(
            tasks.explode, executor, "conformance boom", environment=environment
        )
        result = self.finished(dispatch_id)
        node = self.task_node(dispatch_id, name)
        assert result.status is ct.Status.FAILED
        assert "conformance boom" in (node.error or "")
        assert f"after-{word}" not in (node.stdout or "")

    def test_a_failing_dependency_fails_the_node_with_its_output(self, executor: Executor) -> None:
        word = uuid.uuid4().hex
        failing = f"echo out-{word}; echo err-{word} >&2; exit 7"
        dispatch_id, name = self.dispatch_one(
            tasks.say, executor, f"task-{word}", environment={"deps_bash": [failing]}
        )
        result = self.finished(dispatch_id)
        node = self.task_node(dispatch_id, name)
        assert result.status is ct.Status.FAILED
        assert node.status is ct.Status.FAILED
        error = node.error or ""
        assert "DepsBash" in error and "status 7" in error, error
        assert f"out-{word}" in error and f"err-{word}" in error, error
        assert f"task-{word}" not in (node.stdout or ""), "the task ran after its step failed"

    def test_cancel_during_a_long_dependency_step_kills_it(
        self,
        executor: Executor,
        job_alive: Callable[[str], bool],
        leftovers: Callable[[], list[str]],
        _local_scratch: set[str],
    ) -> None:
        marker = f"covalent-conformance-{uuid.uuid4().hex}"
        word = uuid.uuid4().hex
        environment = {"deps_bash": [f"exec -a {marker} sleep 600"]}
        dispatch_id, name = self.dispatch_one(
            tasks.say, executor, f"task-{word}", environment=environment
        )
        handle = self.running_handle(dispatch_id, name, job_alive, marker)
        node = self.cancel_within_bound(executor, dispatch_id, name, job_alive, handle)
        assert f"task-{word}" not in (node.stdout or ""), "the task ran after the cancel"
        self.assert_nothing_left(leftovers, _local_scratch, marker)

    def test_a_shell_lepton_runs_where_tasks_run(self, executor: Executor) -> None:
        word = uuid.uuid4().hex
        echo = ct.Lepton(
            "bash",
            command=f"echo said-{word}; got=$1:{{suffix}}",
            argtypes=[(str, ct.Lepton.INPUT_OUTPUT), (str, ct.Lepton.OUTPUT)],
            named_outputs=["suffix", "got"],
            executor=executor,
        )

        @ct.lattice
        def workflow(value: str) -> object:
            return echo(value, suffix=AWKWARD_LINE)

        dispatch_id = self.remember(ct.dispatch(workflow)("a b;c"))
        result = self.finished(dispatch_id)
        assert result.status is ct.Status.COMPLETED, self.failure(result)
        assert result.result == (AWKWARD_LINE, f"a b;c:{AWKWARD_LINE}")
