"""Watching a dispatch as a user does: a task's output live and kept after a cancel (`logs`),
`watch` in an 80-column terminal (tmux), every `--json` output, exit codes, shortened ids,
and the notebook tables."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from helpers import wait_until

import covalent_core as ct
from covalent_core.store import open_store
from covalent_core.store import queries as q

CLI = [sys.executable, "-m", "covalent_core"]


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, **kwargs)


@ct.electron
def chatty(n: int, pause: float) -> int:
    import time

    for i in range(n):
        print(f"line {i}", flush=True)
        time.sleep(pause)
    return n


@ct.electron
def explode() -> None:
    raise ValueError("kaboom in the task")


@ct.electron
def echo(text: str) -> str:
    return text


@ct.lattice
def talking(n: int, pause: float) -> int:
    return chatty(n, pause)


@ct.lattice
def failing() -> None:
    return explode()


def test_output_is_readable_while_the_task_runs_and_kept_after_a_cancel() -> None:
    dispatch_id = ct.dispatch(talking)(600, 0.1)
    follower = subprocess.Popen(
        [*CLI, "logs", dispatch_id, "--task", "0", "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert follower.stdout is not None
    seen = [follower.stdout.readline() for _ in range(3)]
    assert seen == ["line 0\n", "line 1\n", "line 2\n"]
    assert ct.get_result(dispatch_id).get_node(0).status is ct.Status.RUNNING, "not live"
    assert "line 2" in (ct.get_result(dispatch_id).get_node(0).stdout or "")
    ct.cancel(dispatch_id, wait=True, timeout=60)
    assert follower.wait(60) == 3, follower.stderr.read() if follower.stderr else ""
    node = ct.get_result(dispatch_id).get_node(0)
    assert node.status is ct.Status.CANCELLED
    assert node.stdout.startswith("line 0\nline 1\nline 2\n"), "the output was lost"
    kept = cli("logs", dispatch_id, "--task", "0")
    assert kept.returncode == 0 and kept.stdout == node.stdout
    tail = cli("logs", dispatch_id, "--tail", "1")
    assert tail.stdout == f"[0 chatty] {node.stdout.splitlines()[-1]}\n"


def test_logs_json_lines_and_stderr() -> None:
    dispatch_id = ct.dispatch(failing)()
    ct.get_result(dispatch_id, wait=True, timeout=60)
    done = cli("logs", dispatch_id, "--stderr", "--json")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines and lines[0]["node_id"] == 0 and lines[0]["stream"] == "stderr"
    assert "kaboom in the task" in lines[0]["text"]


def test_exit_codes_follow_the_dispatch() -> None:
    completed = ct.dispatch(talking)(1, 0.0)
    ct.get_result(completed, wait=True, timeout=60)
    failed = ct.dispatch(failing)()
    ct.get_result(failed, wait=True, timeout=60)
    running = ct.dispatch(talking)(600, 0.1)
    wait_until(lambda: ct.get_result(running).get_node(0).status is ct.Status.RUNNING, 60)
    try:
        assert cli("status", completed).returncode == 0
        assert cli("result", completed).returncode == 0
        assert cli("status", failed).returncode == 1
        assert cli("result", failed).returncode == 1
        assert cli("status", running).returncode == 4
        assert cli("result", running, "--wait", "--timeout", "0.5").returncode == 4
    finally:
        ct.cancel(running, wait=True, timeout=60)
    assert cli("status", running).returncode == 3
    assert cli("result", running).returncode == 3
    assert cli("status", "--no-such-option").returncode == 2


def test_every_json_output_parses_with_its_documented_fields() -> None:
    dispatch_id = ct.dispatch(talking)(2, 0.0)
    ct.get_result(dispatch_id, wait=True, timeout=60)
    listed = json.loads(cli("list", "--json").stdout)
    assert set(listed[0]) == {
        "dispatch_id", "name", "status", "created_at", "ended_at", "redispatched_from"
    }  # fmt: skip
    status = json.loads(cli("status", dispatch_id, "--json").stdout)
    assert status["status"] == "COMPLETED" and status["nodes"][0]["name"] == "chatty"
    assert set(status["nodes"][0]) >= {"node_id", "status", "stage", "cancel_reason", "error"}
    result = json.loads(cli("result", dispatch_id, "--json").stdout)
    assert result["result"] == 2 and result["result_repr"] == "2" and result["failed"] == []
    cancelled = json.loads(cli("cancel", dispatch_id, "--json").stdout)
    assert cancelled["cancelled"] == [] and cancelled["dispatch_status"] == "COMPLETED"
    executors = json.loads(cli("executors", "--json").stdout)
    assert "local" in {e["short_name"] for e in executors["executors"]}
    failed = ct.dispatch(failing)()
    ct.get_result(failed, wait=True, timeout=60)
    result = json.loads(cli("result", failed, "--json").stdout)
    assert result["failed"][0]["name"] == "explode"
    assert "kaboom in the task" in result["failed"][0]["traceback"]


def test_list_filters() -> None:
    name = f"talking_{uuid.uuid4().hex[:6]}"
    lattice = ct.lattice(chatty.function)  # a workflow of its own name
    lattice.__name__ = name
    dispatch_id = ct.dispatch(lattice)(1, 0.0)
    ct.get_result(dispatch_id, wait=True, timeout=60)
    assert dispatch_id in cli("list", "--name", name).stdout
    assert dispatch_id not in cli("list", "--name", name, "--status", "FAILED").stdout
    assert dispatch_id in cli("list", "--since", "1h", "--limit", "100").stdout
    assert dispatch_id not in cli("list", "--since", "2099-01-01").stdout
    bad = cli("list", "--since", "soon")
    assert bad.returncode == 2 and "give a duration" in bad.stderr


def test_a_unique_prefix_stands_for_the_id_and_an_ambiguous_one_is_refused() -> None:
    dispatch_id = ct.dispatch(talking)(1, 0.0)
    ct.get_result(dispatch_id, wait=True, timeout=60)
    assert json.loads(cli("status", dispatch_id[:8], "--json").stdout)["dispatch_id"] == dispatch_id
    stem = uuid.uuid4().hex[:10]
    store = open_store()
    with store.write() as conn:
        for suffix in ("a", "b"):
            q.insert_dispatch(
                conn,
                dispatch_id=f"{stem}-{suffix}",
                name="twin",
                node_rows=[],
                edge_rows=[],
                environment={},
                status=ct.Status.COMPLETED,
            )
    twin = cli("status", stem)
    assert twin.returncode == 2 and "begins several dispatch ids" in twin.stderr
    assert "Traceback" not in twin.stderr
    assert cli("status", f"{stem}-a").returncode == 0


def test_help_with_h() -> None:
    for args in (["-h"], ["logs", "-h"], ["list", "-h"]):
        shown = cli(*args)
        assert shown.returncode == 0 and "Usage:" in shown.stdout
    assert "4  still running" in cli("-h").stdout


class Terminal:
    """A command in a terminal (80 columns unless ``width``): a tmux session on a server of
    the test's own."""

    def __init__(
        self, args: list[str], code_file: Path, program: list[str] = CLI, width: int = 80
    ) -> None:
        self.tmux = ["tmux", "-L", f"covalent-core-{uuid.uuid4().hex[:8]}", "-f", "/dev/null"]
        command = shlex.join([*program, *args]) + f"; echo $? > {code_file}; sleep 60"
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        subprocess.run(
            [*self.tmux, "new-session", "-d", "-x", str(width), "-y", "40", "-s", "t", command],
            check=True,
            env=env,
        )

    def screen(self) -> str:
        return subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", "t"], capture_output=True, text=True
        ).stdout

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@needs_tmux
def test_watch_in_an_80_column_terminal(tmp_path: Path) -> None:
    dispatch_id = ct.dispatch(talking)(20, 0.2)
    code_file = tmp_path / "code"
    terminal = Terminal(["watch", dispatch_id], code_file)
    try:

        def running() -> str | None:
            screen = terminal.screen()
            return screen if "RUNNING" in screen and "line" in screen else None

        live = wait_until(running, 60)
        assert dispatch_id in live, live
        assert "chatty" in live and "tasks done" in live
        # The running task's row: its id, name, status and time whole, the note cut first.
        [row] = [line for line in live.splitlines() if "chatty" in line and "RUNNING" in line]
        assert re.search(r"\b0\b.*chatty.*RUNNING.*\d+ s", row), live
        wait_until(code_file.exists, 60)
        assert code_file.read_text().strip() == "0"
        assert dispatch_id in terminal.screen()
    finally:
        terminal.close()


@needs_tmux
@pytest.mark.parametrize("width", [80, 200])
def test_list_reads_well_in_80_and_200_columns(tmp_path: Path, width: int) -> None:
    """80: the id's first 8 characters (a prefix any command takes), name and status whole,
    the creation time; 200: whole ids and end times too."""
    dispatch_id = ct.dispatch(talking)(1, 0.0)
    ct.get_result(dispatch_id, wait=True, timeout=60)
    code_file = tmp_path / "code"
    terminal = Terminal(["list", "--limit", "3"], code_file, width=width)
    try:
        wait_until(code_file.exists, 60)
        screen = terminal.screen()
        [line] = [row for row in screen.splitlines() if dispatch_id[:8] in row]
        assert "talking" in line and "COMPLETED" in line and "…" not in line, screen
        assert max(len(row) for row in screen.splitlines()) <= width
        if width == 80:
            assert dispatch_id not in screen and "ended" not in screen
        else:
            assert dispatch_id in line and "ended" in screen
    finally:
        terminal.close()


@needs_tmux
def test_waiting_in_a_terminal_shows_a_progress_bar(tmp_path: Path) -> None:
    script = tmp_path / "wait.py"
    script.write_text(
        "import time\n"
        "import covalent_core as ct\n"
        "@ct.electron\n"
        "def nap():\n"
        "    time.sleep(4)\n"
        "@ct.lattice\n"
        "def napping():\n"
        "    return nap()\n"
        "result = ct.get_result(ct.dispatch(napping)(), wait=True)\n"
        "print('ended', result.status)\n"
    )
    code_file = tmp_path / "code"
    terminal = Terminal([str(script)], code_file, program=[sys.executable])
    try:
        shown = wait_until(lambda: "/2 tasks" in (s := terminal.screen()) and s, 60)
        assert "dispatch " in shown, shown
        wait_until(code_file.exists, 60)
        assert "ended COMPLETED" in terminal.screen()
    finally:
        terminal.close()


def test_notebook_tables() -> None:
    failed = ct.dispatch(failing)()
    result = ct.get_result(failed, wait=True, timeout=60)
    page = result._repr_html_()
    assert "<table" in page and failed in page and "FAILED" in page
    assert "kaboom in the task" in page and "<details>" in page  # the remote traceback
    assert "<table" in result.get_node(0)._repr_html_()
    report = ct.cancel(failed)
    assert "already finished" in report._repr_html_()
    listed = ct.list_dispatches(5)
    assert failed in listed._repr_html_()
    shouting = ct.dispatch(ct.lattice(echo))("<script>alert(1)</script>")
    page = ct.get_result(shouting, wait=True, timeout=60)._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page  # outputs are escaped


def test_the_service_says_where_it_logs_and_what_it_runs() -> None:
    running = ct.dispatch(talking)(600, 0.1)
    wait_until(lambda: ct.get_result(running).get_node(0).status is ct.Status.RUNNING, 60)
    try:
        status = json.loads(cli("service", "status", "--json").stdout)
        assert status["running"] is True and running in status["dispatches"]
        assert status["uptime_s"] >= 0 and status["log"].endswith("service.log")
        assert "password" not in status["store"]
        shown = cli("service", "status").stdout
        assert f"pid {status['pid']}" in shown and status["log"] in shown
    finally:
        ct.cancel(running, wait=True, timeout=60)

    def logged() -> str:
        return cli("service", "logs").stdout

    log = wait_until(lambda: "event=cancel_confirmed" in logged() and logged(), 30)
    assert f"event=dispatch_received dispatch={running}" in log
    assert f"event=node_started dispatch={running} node=0 name=chatty" in log
    assert f"event=node_ended dispatch={running} node=0 name=chatty status=CANCELLED" in log
    assert "event=cancel_requested" in log
    assert len(cli("service", "logs", "--tail", "2").stdout.splitlines()) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[executor.local]\nmax_workers = 2\n",
            "unknown section [executor]; did you mean [executors]?",
        ),
        ('[dispatcher]\nidle_timeout = "soon"\n', "idle_timeout in"),
        ("[dispatcher]\nidle_timout = 5\n", "did you mean idle_timeout?"),
        ('[store]\nulr = "sqlite:///x.db"\n', "unknown key [store] ulr; did you mean url?"),
        ("[executors]\nlocal = 3\n", "[executors.local] must be a table of options"),
        ("[executors.locl]\nmax_workers = 2\n", "did you mean [executors.local]?"),
        (
            '[store]\nurl = "postgresql+pg8000://u:secret@localhost/db"\n',
            "pip install 'covalent-core[postgres]'",
        ),
    ],
)
def test_config_mistakes_are_named_with_what_to_write(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "config.toml").write_text(text)
    env = {
        **os.environ,
        "COVALENT_CORE_CONFIG": str(tmp_path / "config.toml"),
        "COVALENT_CORE_DATA_DIR": str(tmp_path / "data"),
    }
    for variable in ("DB_URL", "IDLE_TIMEOUT", "LEASE_SECONDS", "POLL_INTERVAL"):
        env.pop(f"COVALENT_CORE_{variable}", None)  # the file's settings are the ones read
    shown = cli("list", env=env)
    assert shown.returncode == 1 and message in shown.stderr, shown.stderr
    assert "Traceback" not in shown.stderr and "secret" not in shown.stderr
    # A script is told at once, rather than waiting on a service that cannot start.
    script = (
        "import covalent_core as ct\n"
        "@ct.electron\ndef f(): return 1\n"
        "@ct.lattice\ndef w(): return f()\n"
        "try:\n    ct.dispatch(w)()\n"
        "except ct.CovalentCoreError as exc:\n    print('refused:', exc)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert "refused:" in ran.stdout and message in ran.stdout, ran.stdout + ran.stderr


def test_executor_option_mistakes_say_what_was_meant() -> None:
    with pytest.raises(ct.ExecutorConfigError, match="Did you mean 'max_workers'"):
        ct.LocalExecutor(max_worker=3)
    with pytest.raises(ct.ExecutorConfigError, match="option 'max_workers' must be a number"):
        ct.LocalExecutor(max_workers="eight")
    with pytest.raises(ct.ExecutorConfigError, match="option 'isolate_deps' must be true or false"):
        ct.LocalExecutor(isolate_deps="yes")
    from covalent_core.plugins import resolve_executor

    with pytest.raises(ct.ExecutorNotFoundError, match="Did you mean 'local'"):
        resolve_executor("locl")


@needs_tmux
def test_status_in_80_columns_cuts_no_header(tmp_path: Path) -> None:
    dispatch_id = ct.dispatch(talking)(1, 0.0)
    ct.get_result(dispatch_id, wait=True, timeout=60)
    code_file = tmp_path / "code"
    terminal = Terminal(["status", dispatch_id], code_file)
    try:
        wait_until(code_file.exists, 60)
        screen = terminal.screen()
        assert dispatch_id in screen and "…" not in screen, screen
        assert "status" in screen and "COMPLETED" in screen
        assert code_file.read_text().strip() == "0"
    finally:
        terminal.close()


def test_a_notebook_shows_the_tables(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        "import covalent_core as ct\n"
        "@ct.electron\n"
        "def boom():\n"
        "    raise ValueError('kaboom in a notebook')\n"
        "@ct.lattice\n"
        "def flow():\n"
        "    return boom()\n"
        "dispatch_id = ct.dispatch(flow)()",
        "ct.get_result(dispatch_id, wait=True, timeout=60)",
        "ct.list_dispatches(3)",
        "@ct.electron\n"
        "def slow(x):\n"
        "    import time; time.sleep(1.5); return x * 2\n"
        "@ct.lattice\n"
        "def fine():\n"
        "    return slow(21)\n"
        "ct.get_result(ct.dispatch(fine)(), wait=True, timeout=60)",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute(cwd=str(tmp_path))

    def html(cell: int) -> str:
        (result,) = [
            o for o in notebook.cells[cell].outputs if o["output_type"] == "execute_result"
        ]
        return result["data"]["text/html"]

    assert "<table" in html(1) and "FAILED" in html(1)
    assert "kaboom in a notebook" in html(1)  # the remote error, in details
    assert "<table" in html(2)
    assert not [o for o in notebook.cells[1].outputs if o["output_type"] == "stream"]
    # Waiting shows a bar without ipywidgets, left with the last counts; the result is shown.
    bars = [o for o in notebook.cells[3].outputs if o["output_type"] == "display_data"]
    assert bars and "<progress" in bars[0]["data"]["text/html"]
    assert "2/2 tasks" in bars[0]["data"]["text/html"]  # slow and the result node
    assert "COMPLETED" in html(3) and "result: <code>42</code>" in html(3)
    every_output = json.dumps([cell.outputs for cell in notebook.cells])
    for private in ("sys_path", "variables_kept_by", "environment"):
        assert private not in every_output, private
