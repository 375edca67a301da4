"""The covalent-core command, run as users run it: in a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import cli, wait_until

import covalent_core as ct


@ct.electron
def inc(x):
    return x + 1


@ct.electron
def fail():
    raise RuntimeError("broken on purpose")


def test_status_result_and_list_show_what_the_store_holds():
    @ct.lattice
    def flow():
        return inc(inc(1))

    dispatch_id = ct.dispatch_sync(flow, timeout=60)().dispatch_id
    status = cli("status", dispatch_id)
    assert status.returncode == 0, status.stderr
    assert "COMPLETED" in status.stdout and "inc" in status.stdout
    assert ":parameter:" not in status.stdout
    assert ":parameter:1" in cli("status", dispatch_id, "--all").stdout
    result = cli("result", dispatch_id)
    assert result.returncode == 0 and result.stdout.strip().endswith("3")
    assert dispatch_id in cli("list", "--limit", "50").stdout


def test_result_of_a_failed_dispatch_prints_the_traceback_and_exits_1():
    @ct.lattice
    def flow():
        return fail()

    dispatch_id = ct.dispatch_sync(flow, timeout=60)().dispatch_id
    out = cli("result", dispatch_id)
    assert out.returncode == 1
    assert "RuntimeError: broken on purpose" in out.stdout


def test_unknown_id_is_a_clear_error_and_exit_2():
    for args in (("status", "nope"), ("result", "nope"), ("cancel", "nope")):
        out = cli(*args)
        assert out.returncode == 2  # not 1, which says FAILED
        assert "no dispatch 'nope'" in out.stderr


def test_a_prefix_too_short_says_so_and_exits_2():
    @ct.lattice
    def flow():
        return inc(1)

    dispatch_id = ct.dispatch_sync(flow, timeout=60)().dispatch_id
    out = cli("status", dispatch_id[:5])
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "too short a prefix" in out.stderr
    assert "at least 6 characters" in out.stderr and "Traceback" not in out.stderr
    assert cli("status", dispatch_id[:6]).returncode == 0


def test_executors_lists_installed_executors():
    out = cli("executors")
    assert out.returncode == 0
    assert "local" in out.stdout and "LocalExecutor" in out.stdout
    assert "recording" in out.stdout


@ct.electron
def sleepy():
    import time

    time.sleep(600)


def test_a_cancel_reason_is_worded_one_way_everywhere():
    from covalent_core.notebook import result_html

    @ct.lattice
    def flow():
        return inc(sleepy())

    dispatch_id = ct.dispatch(flow)()
    wait_until(lambda: ct.get_result(dispatch_id).get_node(0).stage == "run", 60)
    ct.cancel(dispatch_id, task_ids=[0], wait=True, timeout=60)
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    summary = result.get_node(0).cancel_summary
    assert summary == "user (at run)"
    assert result.get_node(1).cancel_summary == "upstream cancelled"
    assert summary in str(result)
    assert summary in result_html(result)
    assert summary in cli("status", dispatch_id, env={**os.environ, "COLUMNS": "200"}).stdout


def test_result_of_a_cancelled_dispatch_says_which_tasks_and_why():
    @ct.lattice
    def flow():
        return inc(sleepy())

    dispatch_id = ct.dispatch(flow)()
    wait_until(lambda: ct.get_result(dispatch_id).get_node(0).stage == "run", 60)
    ct.cancel(dispatch_id, wait=True, timeout=60)
    out = cli("result", dispatch_id)
    assert out.returncode == 3
    assert "0 sleepy: cancelled, user (at run)" in out.stdout
    document = json.loads(cli("result", dispatch_id, "--json").stdout)
    assert {"node_id": 0, "name": "sleepy", "reason": "user", "stage": "run"} in document[
        "cancelled"
    ]


def test_watch_redispatch_and_service_stop_speak_json():
    @ct.lattice
    def flow():
        return inc(1)

    dispatch_id = ct.dispatch_sync(flow, timeout=60)().dispatch_id
    lines = cli("watch", dispatch_id, "--json").stdout.splitlines()
    last = json.loads(lines[-1])
    assert last["status"] == "COMPLETED" and last["done"] == last["total"] == 2
    again = json.loads(cli("redispatch", dispatch_id, "--json").stdout)
    assert again["redispatched_from"] == dispatch_id
    assert ct.get_result(again["dispatch_id"], wait=True, timeout=60).result == 2
    env = {**os.environ, "COVALENT_CORE_DATA_DIR": os.environ["COVALENT_CORE_DATA_DIR"] + "-x"}
    env.pop("COVALENT_CORE_DB_URL", None)
    assert json.loads(cli("service", "stop", "--json", env=env).stdout) == {"was_running": False}


def test_the_ui_without_its_extra_is_a_mistake_with_the_fix():
    script = (
        "import sys; sys.modules['uvicorn'] = None\n"  # as if the ui extra were not installed
        "from covalent_core.cli import main; main(['ui'])"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 2
    assert "pip install 'covalent-core[ui]'" in out.stderr and "Traceback" not in out.stderr


def test_no_command_prints_a_warning_of_another_library():
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONWARNINGS"] = "default"  # what a user with warnings on would see
    for args in (("list",), ("executors",), ("service", "status"), ("triggers",)):
        out = cli(*args, env=env)
        assert out.returncode == 0, (args, out.stderr)
        assert "Warning" not in out.stderr, (args, out.stderr)
