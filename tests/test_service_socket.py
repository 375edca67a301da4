"""One service per store, always reachable: a removed socket is made again at once; a removed
data directory ends the old service without touching the new one's socket."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from covalent_core import config
from covalent_core.sdk.processes import is_dead
from covalent_core.service.client import request
from covalent_core.service.paths import socket_path
from covalent_core.testing import isolated_store, service_pid, wait_until


def ping_pid(start: bool) -> int:
    return int(request({"op": "ping"}, start=start, timeout=5)["pid"])


def test_a_removed_socket_is_made_again_by_the_same_service(tmp_path: Path):
    with isolated_store(tmp_path / "data", (), 60):
        pid = ping_pid(start=True)
        path = socket_path()
        path.unlink()
        began = time.monotonic()
        # A client that finds no socket while the service holds the lock gets it back.
        assert ping_pid(start=True) == pid
        assert time.monotonic() - began < 10  # only catches a hang (the guard takes ~0.5 s)
        assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("where", ["short", "long"])
def test_a_replaced_data_dir_ends_the_old_service_and_leaves_the_new_ones_socket(
    tmp_path: Path, where: str
):
    # A long path puts the socket in /tmp (a socket's path has at most ~108 bytes); a short one
    # (a private directory of /tmp's, as tmp_path may be long) keeps it in the data directory.
    base = tmp_path / ("d" * 80) if where == "long" else Path(tempfile.mkdtemp(prefix="cc-"))
    data = base / "data"
    with contextlib.ExitStack() as cleanup:
        if where == "short":
            cleanup.callback(shutil.rmtree, base, ignore_errors=True)
        cleanup.enter_context(isolated_store(data, (), 60))
        assert (socket_path().parent == config.service_dir()) is (where == "short")
        old = ping_pid(start=True)
        shutil.rmtree(data)  # a user resetting their data directory
        new = ping_pid(start=True)  # the next client starts a service for the new directory
        assert new != old
        wait_until(lambda: is_dead(old), 20)
        # The old one exited without removing the socket, which is the new service's.
        for _ in range(5):
            assert ping_pid(start=False) == new
            time.sleep(0.2)
        assert service_pid() == new
