"""A real Dask cluster for the tests, on 127.0.0.1: ``dask scheduler`` and ``dask worker``
processes, each started here and stopped at the end.

    cluster = DaskCluster.start(workers=2)
    cluster.address        # tcp://127.0.0.1:PORT
    cluster.worker_pids()  # {worker address: PID of its process}
    cluster.kill_worker(address); cluster.add_worker()
    cluster.stop()

Workers run without a nanny (a killed worker stays dead, as a machine that went away) and
with one thread, so one task at a time each. Needs ``dask[distributed]`` in this Python.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .ports import free_port, server_dir

START_TIMEOUT = 60.0


@dataclass
class DaskCluster:
    """A scheduler and its workers, as processes of this test session."""

    directory: Path
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def start(cls, workers: int = 2) -> DaskCluster:
        directory = server_dir("covalent-dask-")
        port = free_port()
        address = f"tcp://127.0.0.1:{port}"
        log = open(directory / "scheduler.log", "wb")  # noqa: SIM115 - the process's
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", str(port), "--no-dashboard", "--no-show"],
            stdout=log, stderr=subprocess.STDOUT, cwd=directory, start_new_session=True,
        )  # fmt: skip
        cluster = cls(directory, address, scheduler)
        try:
            for _ in range(workers):
                cluster.add_worker(wait=False)
            cluster.wait_for_workers(workers)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def add_worker(self, wait: bool = True) -> None:
        """Start one more worker (one thread, no nanny) and wait until it has joined."""
        n = len(self.workers)
        log = open(self.directory / f"worker-{n}.log", "wb")  # noqa: SIM115 - the process's
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", self.address,
             "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny", "--no-dashboard",
             "--local-directory", str(self.directory / f"worker-{n}"), "--name", f"w{n}"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.directory, start_new_session=True,
        )  # fmt: skip
        self.workers.append(worker)
        if wait:
            self.wait_for_workers(len(self.live_workers()))

    def live_workers(self) -> list[subprocess.Popen[bytes]]:
        return [w for w in self.workers if w.poll() is None]

    def worker_pids(self) -> dict[str, int]:
        """Each connected worker's address and PID, as the scheduler knows them."""
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            return dict(client.run(os.getpid))

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited; see {self.directory}/scheduler.log")
            with (
                contextlib.suppress(OSError, TimeoutError),
                Client(self.address, timeout=5) as client,
            ):
                client.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{n} dask workers did not join; see {self.directory}")
            time.sleep(0.2)

    def kill_worker(self, address: str) -> None:
        """SIGKILL the worker at ``address``, as a machine that died."""
        pid = self.worker_pids()[address]
        os.kill(pid, signal.SIGKILL)
        for worker in self.workers:
            if worker.pid == pid:
                worker.wait(30)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
