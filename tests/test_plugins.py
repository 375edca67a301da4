"""Plugin discovery through entry points, broken plugins, the limit and trace variables, and
choosing an installed executor by short name with defaults from the config file."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import helpers
import pytest

import covalent_core as ct
from covalent_core.plugins import ENV_PLUGINS, ENV_TRACE, registry, reset_registry


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command with ``env`` added to this process's environment."""
    return helpers.cli(*args, env={**os.environ, **(env or {})})


@pytest.fixture
def broken_distribution(tmp_path: Path) -> dict[str, str]:
    """An installed distribution whose plugin module fails to import (a missing library)."""
    dist = tmp_path / "covalent_broken-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: covalent-broken\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text(
        "[covalent_core.plugins]\nbroken = covalent_broken_plugin\n"
    )
    (tmp_path / "covalent_broken_plugin.py").write_text(
        'raise ImportError("needs libquantum.so, which is not installed")\n'
    )
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ["PYTHONPATH"]])}


def test_an_installed_package_is_found_through_its_entry_point():
    out = cli("executors")
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if " workdir " in line)
    assert "covalent_workdir.WorkdirExecutor" in row
    assert "covalent-workdir" in row and "0.1.0" in row


def test_a_broken_plugin_is_listed_with_why_and_the_others_still_load(broken_distribution):
    out = cli("executors", env=broken_distribution)
    assert out.returncode == 0
    assert "plugin 'broken' failed to load" in out.stderr
    assert "needs libquantum.so" in out.stderr
    assert "local" in out.stdout and "workdir" in out.stdout


def test_the_limit_variable_loads_only_the_named_plugins(broken_distribution):
    out = cli("executors", env={**broken_distribution, ENV_PLUGINS: "local"})
    assert out.returncode == 0
    assert "local" in out.stdout
    assert "workdir" not in out.stdout
    assert "broken" not in out.stderr, "a plugin left out by the limit must not even be imported"


def test_an_executor_of_a_plugin_left_out_says_how_to_get_it(monkeypatch):
    monkeypatch.setenv(ENV_PLUGINS, "local")
    reset_registry()
    try:
        with pytest.raises(ct.ExecutorNotFoundError, match=r"covalent, local.*pip install"):
            registry().executor_class("workdir")
    finally:
        monkeypatch.delenv(ENV_PLUGINS)
        reset_registry()


def test_the_trace_variable_logs_every_hook_call(monkeypatch, caplog):
    def traced() -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="covalent_core.hooks"):
            registry().hook.covalent_executor_classes()
        return [r.getMessage() for r in caplog.records if r.name == "covalent_core.hooks"]

    reset_registry()
    assert traced() == [], "hooks are not traced unless asked"
    monkeypatch.setenv(ENV_TRACE, "1")
    reset_registry()
    try:
        assert any("covalent_executor_classes" in m for m in traced())
    finally:
        monkeypatch.delenv(ENV_TRACE)
        reset_registry()


def test_a_short_name_takes_its_options_from_the_config_file(tmp_path, private_store):
    root = tmp_path / "tasks"
    config = Path(os.environ["COVALENT_CORE_CONFIG"])
    config.write_text(f'[executors.workdir]\nroot = "{root}"\ncancel_grace = 0.5\n')
    try:

        @ct.electron(executor="workdir")
        def where() -> str:
            import os

            return os.getcwd()

        @ct.lattice
        def flow():
            return where()

        dispatch_id = ct.dispatch(flow)()
        result = ct.get_result(dispatch_id, wait=True, timeout=60)
        assert result.status is ct.Status.COMPLETED, result.error
        assert Path(result.result).parent == root
        assert not any(root.iterdir()), "cleanup removes the task's directory"
    finally:
        config.unlink()


def test_an_unknown_option_in_the_config_file_names_the_section(private_store):
    config = Path(os.environ["COVALENT_CORE_CONFIG"])
    config.write_text('[executors.workdir]\nroot = "/tmp/x"\npython = "python3"\n')
    try:
        from covalent_core.plugins import resolve_executor

        with pytest.raises(ct.ExecutorConfigError, match=r"Accepted options: root, python_path"):
            resolve_executor("workdir")
    finally:
        config.unlink()
