"""The conformance suite reports deliberately broken executors as failing (run with pytester)."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

pytest_plugins = ["pytester"]

TEST_MODULE = """
import pytest
from broken_executors import {cls}, alive
from covalent_core.testing import ExecutorConformance


class TestBroken(ExecutorConformance):
    extra_plugins = ("broken_executors",)

    @pytest.fixture
    def root(self, tmp_path):
        return tmp_path / "tasks"

    @pytest.fixture
    def executor(self, root):
        return {cls}(root=str(root), cancel_grace=0.5)

    @pytest.fixture
    def job_alive(self, executor):
        return alive

    @pytest.fixture
    def leftovers(self, root):
        return lambda: sorted(str(p) for p in root.glob("*")) if root.exists() else []
"""


def run_suite(pytester: pytest.Pytester, cls: str, select: str) -> pytest.RunResult:
    pytester.makepyfile(test_broken=TEST_MODULE.format(cls=cls))
    try:
        return pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-k", select)
    finally:
        kill_strays(str(pytester.path))


def kill_strays(path: str) -> None:
    """Broken executors leave task processes running; stop them (and their groups).

    Only processes working under ``path``, this run's own directory (a task and the child it
    started run in the task's directory there): other suites on this machine run conformance
    tasks with the same marker prefix at the same time (CI's Slurm lane beside this one).
    """
    ours = os.getpgrp()
    for proc in psutil.process_iter(["pid", "cwd"]):
        cwd = proc.info.get("cwd") or ""
        if cwd.startswith(path):
            try:
                pgid = os.getpgid(proc.info["pid"])
                if pgid != ours:
                    os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def test_a_cancel_that_does_nothing_fails_the_running_and_fresh_process_tests(pytester):
    result = run_suite(
        pytester, "NoopCancelExecutor", "while_running or fresh_process or returns_value"
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*FAILED*test_cancel_while_running_stops_the_job_within_its_bound*",
            "*FAILED*test_cancel_from_a_fresh_process_uses_only_the_store*",
        ],
        consecutive=False,
    )
    assert "still runs job" in result.stdout.str()


def test_a_retry_that_ignores_the_cancel_flag_fails_the_running_test(pytester):
    result = run_suite(pytester, "IgnoresCancelFlagExecutor", "while_running or returns_value")
    result.assert_outcomes(passed=1, failed=1)
    assert "task processes still running" in result.stdout.str()


def test_an_executor_that_leaves_files_fails_the_nothing_left_tests(pytester):
    result = run_suite(pytester, "LitteringExecutor", "nothing_left or returns_value")
    result.assert_outcomes(passed=1, failed=3)
    assert "the executor left this behind on the resource" in result.stdout.str()


def test_an_executor_that_reruns_after_a_restart_fails_the_reattach_tests(pytester):
    result = run_suite(pytester, "RerunsOnReattachExecutor", "running_job or ends_while")
    result.assert_outcomes(failed=2)
    assert "it ran twice" in result.stdout.str()


def test_an_executor_that_kills_its_job_on_reattach_fails_the_reattach_test(pytester):
    result = run_suite(pytester, "KillsOnReattachExecutor", "running_job")
    result.assert_outcomes(failed=1)
