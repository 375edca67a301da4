"""Every file and directory covalent-core makes is owner-only, whatever the umask: a
dispatch run entirely under ``umask 000`` (its client, service, workers and tasks) leaves
nothing in the data directory that another user could read."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import covalent_core as ct
from covalent_core.testing import isolated_store, wait_until

RUN = textwrap.dedent(
    """
    import os, sys
    import covalent_core as ct

    @ct.electron
    def big(n):
        print("some output")
        print("some errors", file=sys.stderr)
        return b"x" * n

    @ct.electron
    def fail():
        raise ValueError("on purpose")

    @ct.electron(deps_bash=["true"])
    def size(value):
        return len(value)

    @ct.electron
    def wait_for(flag):
        import os, time
        while not os.path.exists(flag):
            time.sleep(0.02)
        return "waited"

    @ct.lattice
    def flow(flag):
        return [size(big(3 << 20)), fail(), wait_for(flag)]

    print(ct.dispatch(flow)(sys.argv[1]), flush=True)
    """
)


def loose(root: Path) -> list[str]:
    """Everything under ``root`` that its group or others may read, write or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if stat.S_ISLNK(path.lstat().st_mode):
            continue
        if mode & 0o077:
            found.append(f"{path.relative_to(root)} {mode:o}")
    return found


def test_everything_made_under_umask_000_is_owner_only(tmp_path: Path):
    data = tmp_path / "data"
    flag = tmp_path / "flag"
    with isolated_store(data, (), 30):
        old = os.umask(0)  # the client, and the service and workers it starts, run under it
        try:
            out = subprocess.run(
                [sys.executable, "-c", RUN, str(flag)], capture_output=True, text=True,
                timeout=180,
            )  # fmt: skip
        finally:
            os.umask(old)
        assert out.returncode == 0, out.stderr[-3000:]
        dispatch_id = out.stdout.split()[-1]
        try:
            # While a task runs: its directory, start mark and output files.
            started = wait_until(
                lambda: list(data.glob(f"service/*/tasks/{dispatch_id}-*/started"))
            )
            assert started and loose(data) == []
        finally:
            flag.touch()  # the task ends, whatever was found
        result = ct.get_result(dispatch_id, wait=True, timeout=120)
        assert result.status is ct.Status.FAILED
        assert [n.status for n in result.tasks].count(ct.Status.COMPLETED) == 3
        assert result.get_node(0).stdout == "some output\n"
        ct.covalent_stop(quiet=True)
    assert loose(data) == []
