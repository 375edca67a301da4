"""Owner-only, verified: the data directory, store, log and outcome files are tightened when
found wider; another user's or a linked directory is refused; each task sees the environment
of the process that dispatched it, never another client's."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import cli

from covalent_core.errors import CovalentCoreError
from covalent_core.permissions import private_dir
from covalent_core.testing import isolated_store

NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_wide_data_dir_and_store_are_made_owner_only_with_a_warning(tmp_path: Path):
    data = tmp_path / "data"
    with isolated_store(data, (), 30):
        assert cli("list").returncode == 0  # creates the store
        os.chmod(data, 0o755)
        os.chmod(data / "covalent.db", 0o644)
        out = cli("list")
        assert out.returncode == 0, out.stderr
        assert "made owner-only" in out.stderr
        assert mode(data) == 0o700
        assert mode(data / "covalent.db") == 0o600
        for path in data.rglob("*"):
            if path.is_socket() or path.is_symlink():
                continue
            assert mode(path) & 0o077 == 0, path


def test_a_directory_of_another_user_is_refused(tmp_path: Path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(CovalentCoreError, match="belongs to user id 65534"):
        private_dir(theirs)


def test_a_symbolic_link_in_place_of_a_directory_is_refused(tmp_path: Path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(CovalentCoreError, match="symbolic link"):
        private_dir(link)


def test_a_data_dir_of_another_user_is_refused_by_every_command(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    os.chown(data, NOBODY, NOBODY)
    env = {**os.environ, "COVALENT_CORE_DATA_DIR": str(data)}
    env.pop("COVALENT_CORE_DB_URL", None)
    out = cli("list", env=env)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and "belongs to user id" in out.stderr
    assert "Traceback" not in out.stderr
    assert list(data.iterdir()) == []  # nothing was written there


DISPATCH = textwrap.dedent(
    """
    import os, sys
    import covalent_core as ct

    @ct.electron
    def read_env():
        return (os.environ.get("MINE"), os.environ.get("ONLY_IN_A"))

    @ct.lattice
    def flow():
        return read_env()

    result = ct.dispatch_sync(flow, timeout=120)()
    print(repr(result.result))
    """
)


def test_each_task_sees_the_environment_of_the_process_that_dispatched_it(tmp_path: Path):
    with isolated_store(tmp_path / "data", (), 60):
        base = {k: v for k, v in os.environ.items() if k not in ("MINE", "ONLY_IN_A")}
        a = subprocess.run(
            [sys.executable, "-c", DISPATCH],
            env={**base, "MINE": "a", "ONLY_IN_A": "yes"},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert a.stdout.strip() == "('a', 'yes')", a.stderr
        # B uses the service A started (and its warm workers).
        b = subprocess.run(
            [sys.executable, "-c", DISPATCH],
            env={**base, "MINE": "b"},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert b.stdout.strip() == "('b', None)", b.stderr
