"""Bad input is refused clearly: a TypeError naming what was given, one ``error:`` line from
the command (exit 1; 2 for usage), never a traceback, and nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import cli

import covalent_core as ct


@ct.electron
def nap(seconds):
    import time as _time

    _time.sleep(seconds)
    return seconds


@ct.lattice
def two_naps():
    return [nap(30), nap(30)]


@pytest.fixture(scope="module")
def running():
    dispatch_id = ct.dispatch(two_naps)()
    yield dispatch_id
    ct.cancel(dispatch_id, wait=True, timeout=60)


@pytest.mark.parametrize(
    "task_ids", ["12", b"1", True, False, 1.5, {1: 2}, [1, True], [1, "2"], [1.0], object()]
)
def test_task_ids_of_a_wrong_type_are_refused_and_nothing_is_cancelled(running, task_ids):
    with pytest.raises(TypeError, match="task_ids must be a task id") as info:
        ct.cancel(running, task_ids)
    assert type(task_ids).__name__ in str(info.value) or "bool" in str(info.value)
    statuses = {t.node_id: t.status for t in ct.get_result(running).tasks}
    assert ct.Status.CANCELLED not in statuses.values(), statuses


def test_task_ids_take_an_int_or_an_iterable_of_ints(running):
    tasks = [t.node_id for t in ct.get_result(running).tasks]
    # Unknown ids are refused by name, which proves they were read as whole numbers.
    with pytest.raises(KeyError, match="12"):
        ct.cancel(running, 12)
    with pytest.raises(KeyError, match="12"):
        ct.cancel(running, (i for i in [12]))
    assert tasks


def test_a_dispatch_id_that_is_not_a_string_is_a_type_error():
    with pytest.raises(TypeError, match="dispatch id is a string"):
        ct.get_result(123)  # type: ignore[arg-type]


def test_an_overlong_id_is_not_found_at_once():
    long_id = "x" * 100_000
    with pytest.raises(KeyError, match="100000 characters"):
        ct.get_result(long_id)
    for command in ("status", "result", "cancel"):
        started = time.monotonic()
        out = cli(command, long_id)
        assert out.returncode == 2, (command, out.stderr)
        assert out.stderr.startswith("error: no dispatch"), (command, out.stderr)
        assert "Traceback" not in out.stderr + out.stdout
        assert len(out.stderr) < 2000
        assert time.monotonic() - started < 30  # only catches a hang


def test_a_huge_limit_is_a_usage_error():
    out = cli("list", "--limit", "100000000000000000000")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "--limit" in out.stderr


def test_a_wrong_task_option_is_a_usage_error(running):
    out = cli("cancel", running, "--task", "twelve")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "--task" in out.stderr


def test_every_command_under_an_invalid_config_says_which_file(tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text("[store\nurl = ")
    env = {**os.environ, "COVALENT_CORE_CONFIG": str(config)}
    commands = [
        ("list",),
        ("status", "some-id"),
        ("result", "some-id"),
        ("cancel", "some-id"),
        ("cancel", "some-id", "--task", "1"),
        ("executors",),
        ("service", "status"),
        ("service", "stop"),
    ]
    for command in commands:
        out = cli(*command, env=env)
        assert "Traceback" not in out.stderr + out.stdout, command
        if out.returncode != 0:
            assert out.returncode == 1, (command, out.stderr)
            assert out.stderr.startswith("error: "), (command, out.stderr)
            assert str(config) in out.stderr.replace("\n", ""), (command, out.stderr)


CONFIG_MISTAKES = {
    "url garbage": ({"COVALENT_CORE_DB_URL": "garbage"}, None, "COVALENT_CORE_DB_URL"),
    "url a number": ({}, "[store]\nurl = 5\n", "[store] url in"),
    "url of no kind": ({}, "[store]\nurl = 'nonsense://x'\n", "[store] url in"),
    "binary config": ({}, b"\x00\xff\xfe binary", "is not valid TOML"),
    "config is a directory": ({"COVALENT_CORE_CONFIG": "{tmp}"}, None, "is a directory"),
    "data dir is a file": ({"COVALENT_CORE_DATA_DIR": "{tmp}/file"}, None, "is a file"),
    "data dir under a file": ({"COVALENT_CORE_DATA_DIR": "{tmp}/file/sub"}, None, "is a file"),
}

DISPATCH_ONE = """
import covalent_core as ct
from covalent_core.errors import ConfigError

@ct.electron
def one():
    return 1

@ct.lattice
def flow():
    return one()

try:
    ct.dispatch(flow)()
except ConfigError as exc:
    print("ConfigError:", exc)
"""


@pytest.mark.parametrize("case", list(CONFIG_MISTAKES))
def test_a_configuration_mistake_is_named_by_the_api_and_the_cli(tmp_path: Path, case: str):
    settings, config_text, named = CONFIG_MISTAKES[case]
    (tmp_path / "file").write_text("not a directory")
    env = {
        **os.environ,
        "COVALENT_CORE_DATA_DIR": str(tmp_path / "data"),
        "COVALENT_CORE_CONFIG": str(tmp_path / "config.toml"),
    }
    env.pop("COVALENT_CORE_DB_URL", None)
    env.update({k: v.format(tmp=tmp_path) for k, v in settings.items()})
    if config_text is not None:
        data = config_text if isinstance(config_text, bytes) else config_text.encode()
        (tmp_path / "config.toml").write_bytes(data)
    api = subprocess.run(
        [sys.executable, "-c", DISPATCH_ONE], capture_output=True, text=True, env=env, timeout=60
    )
    assert api.returncode == 0 and api.stdout.startswith("ConfigError: "), api.stderr[-2000:]
    assert named in api.stdout, api.stdout
    out = cli("list", env=env)
    assert out.returncode != 0 and out.stderr.startswith("error: "), out.stderr
    assert named in out.stderr and "Traceback" not in out.stderr
    assert "unexpected" not in out.stderr
