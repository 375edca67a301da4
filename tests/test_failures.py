"""Bad input and failing tasks: clear errors, nothing stored is lost, nothing hangs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import covalent_core as ct


@ct.electron
def boom(x):
    raise ValueError(f"bad value {x}")


@ct.electron
def inc(x):
    return x + 1


@ct.electron
def die(how):
    import os as _os
    import signal as _signal

    if how == "exit":
        _os._exit(3)
    _os.kill(_os.getpid(), _signal.SIGKILL)


def test_failed_task_keeps_its_traceback_and_stops_its_dependents_only():
    @ct.lattice
    def flow():
        bad = boom(1)
        return [inc(bad), inc(1)]

    result = ct.dispatch_sync(flow, timeout=60)()
    assert result.status is ct.Status.FAILED
    assert "0: boom: ValueError" in result.error
    failed = result.get_node(0)
    assert failed.error == "ValueError: bad value 1"
    assert "in boom" in failed.traceback
    assert failed.traceback.rstrip().endswith("ValueError: bad value 1")
    dependent = result.get_node(2)
    assert dependent.status is ct.Status.CANCELLED
    assert dependent.cancel_reason == "upstream failed"
    independent = result.get_node(3)
    assert independent.status is ct.Status.COMPLETED and independent.output == 2
    assert not [n for n in result.nodes if n.status in (ct.Status.NEW_OBJECT, ct.Status.RUNNING)]


@pytest.mark.parametrize(
    ("how", "expected"),
    [("exit", "exited with code 3"), ("signal", "killed by signal SIGKILL")],
)
def test_task_whose_process_dies_fails_with_the_exit_code_or_signal(how, expected):
    @ct.lattice
    def flow():
        return die(how)

    result = ct.dispatch_sync(flow, timeout=60)()
    assert result.status is ct.Status.FAILED
    assert expected in result.get_node(0).error


def test_unpicklable_argument_fails_at_dispatch_naming_the_argument():
    lock = threading.Lock()

    @ct.lattice
    def flow(resource):
        return inc(x=resource)

    before = len(ct.list_dispatches(1000))
    with pytest.raises(
        ct.SerializationError, match=r"argument 'x' of node 0 \(inc\) cannot be pickled"
    ):
        ct.dispatch(flow)(lock)
    assert len(ct.list_dispatches(1000)) == before  # nothing half-stored


def test_unknown_dispatch_id_raises_dispatch_not_found():
    with pytest.raises(ct.DispatchNotFoundError, match="no dispatch 'missing'"):
        ct.get_result("missing")


def test_get_result_wait_timeout_is_a_clear_error_and_the_dispatch_goes_on():
    @ct.electron
    def slow():
        import time

        time.sleep(3)
        return "done"

    @ct.lattice
    def flow():
        return slow()

    dispatch_id = ct.dispatch(flow)()
    with pytest.raises(ct.DispatchTimeoutError, match=r"did not finish within 0\.2 s"):
        ct.get_result(dispatch_id, wait=True, timeout=0.2)
    assert ct.get_result(dispatch_id, wait=True, timeout=60).result == "done"


def test_unknown_executor_name_fails_at_dispatch_listing_installed_ones():
    bad = ct.electron(inc.function, executor="no-such-executor")

    @ct.lattice
    def flow():
        return bad(1)

    with pytest.raises(ct.ExecutorNotFoundError, match=r"installed: .*local, recording.*workdir"):
        ct.dispatch(flow)()


def test_unknown_executor_option_lists_accepted_ones():
    with pytest.raises(ct.ExecutorConfigError, match="Accepted options: max_workers"):
        ct.LocalExecutor(max_worker=3)


def test_executor_defaults_come_from_the_config_file(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[executors.local]\nmax_workers = 3\ncancel_grace = 0.5\n")
    os.environ["COVALENT_CORE_CONFIG"] = str(config)
    try:
        from covalent_core.plugins import resolve_executor

        assert resolve_executor("local") == (
            "local",
            {"max_workers": 3, "cancel_grace": 0.5},
        )
        config.write_text("[executors.local]\nmax_wrkers = 3\n")
        with pytest.raises(ct.ExecutorConfigError, match=r"from \[executors.local\]"):
            resolve_executor("local")
    finally:
        os.environ["COVALENT_CORE_CONFIG"] = str(tmp_path.parent / "config.toml")


def test_results_are_readable_from_another_process():
    @ct.lattice
    def flow():
        return inc(41)

    dispatch_id = ct.dispatch_sync(flow, timeout=60)().dispatch_id
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import covalent_core as ct; print(ct.get_result({dispatch_id!r}).result)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "42"


def test_concurrent_dispatch_status_and_cancel_from_several_processes():
    code = (
        "import covalent_core as ct, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_failures import inc\n"
        "@ct.lattice\n"
        "def flow(n):\n"
        "    return [inc(i) for i in range(n)]\n"
        "ids = [ct.dispatch(flow)(20) for _ in range(5)]\n"
        "ct.cancel(ids[0])\n"
        "for i in ids:\n"
        "    ct.get_result(i, wait=True, timeout=120)\n"
        "print('ok')\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, os.path.dirname(__file__)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and out.strip() == "ok", err
        assert "database is locked" not in err


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


@ct.electron
def raises_unprintable():
    raise Unprintable()


@ct.electron
def closes_every_descriptor():
    import os as _os

    _os.closerange(0, 4096)  # its report pipe to the worker too
    return 5


def test_an_exception_whose_str_raises_still_shows_its_type_and_traceback():
    @ct.lattice
    def flow():
        return raises_unprintable()

    result = ct.dispatch_sync(flow, timeout=60)()
    node = result.get_node(0)
    assert node.status is ct.Status.FAILED
    assert "Unprintable" in node.error and "exited with code" not in node.error, node.error
    assert "raise Unprintable()" in node.traceback, node.traceback


def test_a_task_that_closes_every_descriptor_keeps_the_outcome_it_returned():
    @ct.lattice
    def flow():
        return closes_every_descriptor()

    result = ct.dispatch_sync(flow, timeout=60)()
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == 5


@ct.electron
def divide_by(a, b):
    x = a + 1
    return x / b


def test_a_traceback_starts_at_the_users_code_with_its_file_line_and_source():
    @ct.lattice
    def flow():
        return divide_by(1, 0)

    node = ct.dispatch_sync(flow, timeout=60)().get_node(0)
    assert node.traceback.startswith("Traceback (most recent call last):\n")
    first_frame = node.traceback.splitlines()[1]
    line = divide_by.function.__code__.co_firstlineno + 3  # the decorator's line, then 3 on
    assert first_frame == f'  File "{__file__}", line {line}, in divide_by'
    assert "return x / b" in node.traceback
    assert "covalent_core" not in node.traceback and "runner" not in node.traceback


def test_code_no_file_holds_shows_its_lines_as_a_notebook_cell_does():
    import linecache

    cell = "<ipython-input-42-0123456789ab>"
    source = "def half(n):\n    m = n * 1\n    return m / 0\n"
    linecache.cache[cell] = (len(source), None, source.splitlines(True), cell)  # as IPython does
    namespace: dict = {}
    exec(compile(source, cell, "exec"), namespace)
    try:
        half = ct.electron(namespace["half"])

        @ct.lattice
        def flow():
            return half(4)

        node = ct.dispatch_sync(flow, timeout=60)().get_node(0)
    finally:
        linecache.cache.pop(cell, None)
    assert f'File "{cell}", line 3, in half' in node.traceback
    assert "    return m / 0" in node.traceback


def test_the_runner_run_as_source_reports_a_failure_from_the_users_frame(tmp_path):
    """Remote executors run the runner's source with ``python -c`` (no ``__file__``): a
    failing task still reports its error and a traceback that starts at the user's code."""
    import pickle

    import cloudpickle

    from covalent_core.sdk import runner

    def breaks(x):
        return x / 0

    payload = tmp_path / "payload"
    payload.write_bytes(
        pickle.dumps(
            (cloudpickle.dumps(breaks), [cloudpickle.dumps(1)], {}, {"cwd": str(tmp_path)})
        )
    )
    source = Path(runner.__file__).read_text()
    done = subprocess.run(
        [sys.executable, "-I", "-c", source, str(payload), str(tmp_path / "outcome")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    outcome = pickle.loads((tmp_path / "outcome").read_bytes())
    assert not outcome["ok"] and "ZeroDivisionError" in outcome["error"]
    assert outcome["traceback"].splitlines()[1].endswith("in breaks"), outcome["traceback"]
