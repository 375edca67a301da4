"""SSH executor benchmarks against a real sshd on 127.0.0.1 (started here, stopped after).

Cancel latency: from ``ct.cancel()`` to the remote task's monitor dead (state Z counts).
Throughput: 100 trivial tasks on one host, and how many SSH logins the server accepted.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any

import covalent_core as ct

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import latency_ms, standalone, wait_for_handle  # noqa: E402


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[19])


def _alive(handle: dict[str, Any]) -> bool:
    info = _stat(handle["pid"])
    return info is not None and info[1] == handle["start_ticks"] and info[0] not in ("Z", "X")


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


def _noop(i: int) -> int:
    return i


def measure(cancel_runs: int = 10, tasks: int = 100) -> dict[str, Any]:
    """Run both measurements; returns JSON-ready numbers."""
    from covalent_ssh import SSHExecutor
    from pytest_covalent_servers.sshd import SSHServer

    server = SSHServer.start()
    try:
        executor = SSHExecutor(
            username="root",
            hostname="127.0.0.1",
            port=server.port,
            ssh_key_file=str(server.client_key),
            known_hosts=str(server.known_hosts),
            remote_workdir=f"/tmp/covalent-ssh-bench/{uuid.uuid4().hex[:8]}",
            python_path=sys.executable,
            cancel_grace=3.0,
        )
        sleeper = ct.electron(_sleep, executor=executor)
        noop = ct.electron(_noop, executor=executor)

        @ct.lattice
        def one_sleeper() -> None:
            return sleeper(600)

        @ct.lattice
        def many(n: int) -> list[int]:
            return [noop(i) for i in range(n)]

        logins_before = server.accepted_logins()
        ct.get_result(ct.dispatch(many)(2), wait=True, timeout=120)  # connect and check once
        samples = []
        for _ in range(cancel_runs):
            dispatch_id = ct.dispatch(one_sleeper)()
            handle = wait_for_handle(dispatch_id)
            start = time.perf_counter()
            ct.cancel(dispatch_id)
            while _alive(handle):
                time.sleep(0.001)
            samples.append(time.perf_counter() - start)
            ct.get_result(dispatch_id, wait=True, timeout=60)
        start = time.perf_counter()
        result = ct.get_result(ct.dispatch(many)(tasks), wait=True, timeout=600)
        seconds = time.perf_counter() - start
        return {
            "cancel_to_remote_process_dead_ms": latency_ms(samples),
            "trivial_tasks": {
                "tasks": tasks,
                "status": str(result.status),
                "seconds": seconds,
                "tasks_per_s": tasks / seconds,
            },
            "ssh_logins_accepted": server.accepted_logins() - logins_before,
        }
    finally:
        server.remove()


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Table rows: (benchmark, result, target)."""
    c, t = result["cancel_to_remote_process_dead_ms"], result["trivial_tasks"]
    return [
        (
            "ssh: cancel -> remote process dead",
            f"p50 {c['p50']:.0f} ms, p95 {c['p95']:.0f} ms",
            "p50 <= 300 ms",
        ),
        (
            f"ssh: {t['tasks']} trivial tasks, one host",
            f"{t['tasks_per_s']:.1f} tasks/s ({t['seconds']:.2f} s), "
            f"{result['ssh_logins_accepted']} SSH connection(s)",
            "1 connection",
        ),
    ]


if __name__ == "__main__":
    standalone(measure)
