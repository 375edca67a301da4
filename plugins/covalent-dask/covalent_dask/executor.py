"""DaskExecutor: run each task on a Dask cluster in a process of its own, and kill it on cancel."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import posixpath
import socket
import uuid
import warnings
from typing import Any, ClassVar
from urllib.parse import urlsplit

from covalent_core import config
from covalent_core.errors import ExecutorConfigError, ExecutorError, JobLostError
from covalent_core.sdk import Executor, TaskContext, TaskOutcome

from . import worker as on_worker

logger = logging.getLogger(__name__)


class DaskSchedulerError(ExecutorError, ConnectionError):
    """The Dask scheduler could not be reached."""


def insecure_address(address: str) -> bool:
    """True for a scheduler reached over Dask's plain TCP on a non-loopback host."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme in ("tls", "inproc", "ucx+tls"):
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name: it may resolve anywhere


class DaskExecutor(Executor):
    """Runs tasks on the Dask cluster at ``scheduler_address``, each in its own process.

    Without an address it takes ``scheduler_address`` from ``[executors.dask]`` in the config
    file, or else starts a ``LocalCluster`` (``n_workers`` processes of one thread, on
    127.0.0.1) owned by the dispatcher service, stopped with it: Covalent's default. Covalent's
    options are accepted: ``log_stdout`` and ``log_stderr`` (recorded; output is kept with the
    node), ``conda_env``, ``cache_dir``, ``current_env_on_conda_fail`` (recorded),
    ``workdir`` and ``create_unique_workdir`` (the task runs in ``workdir``, or in
    ``workdir/DISPATCH_ID/node_N``, made on the worker). Also ``connect_timeout``,
    ``cancel_grace`` (seconds between SIGTERM and SIGKILL), ``poll_freq`` (how often a
    running task's worker is checked to be alive).

    Every worker needs covalent-dask installed (``pip install covalent-dask``), as Dask needs
    the same packages on the client and the workers.
    """

    short_name: ClassVar[str] = "dask"
    cancel_bound: ClassVar[float] = 15.0
    max_concurrency: ClassVar[int] = 256

    def __init__(
        self,
        scheduler_address: str = "",
        log_stdout: str = "stdout.log",
        log_stderr: str = "stderr.log",
        conda_env: str = "",
        cache_dir: str = "",
        current_env_on_conda_fail: bool = False,
        workdir: str = "",
        create_unique_workdir: bool = False,
        n_workers: int = 0,
        connect_timeout: float = 10.0,
        cancel_grace: float = 3.0,
        poll_freq: float = 1.0,
    ) -> None:
        if conda_env:
            raise ExecutorConfigError(
                "DaskExecutor: conda_env is not supported; start the Dask workers in that "
                "environment instead (their Python runs the tasks)"
            )
        configured = config.executor_defaults(self.short_name).get("scheduler_address", "")
        self.address = str(scheduler_address or configured or "")
        if self.address and insecure_address(self.address):
            warnings.warn(
                f"the Dask scheduler {self.address} is reached over plain TCP beyond this "
                "machine: Dask's protocol is unauthenticated, so whoever reaches that address "
                "can run code on its workers. Use tls:// with certificates, or keep the cluster "
                "on a private network.",
                stacklevel=2,
            )
        self.workdir = workdir
        self.create_unique_workdir = create_unique_workdir
        self.n_workers = n_workers
        self.connect_timeout = connect_timeout
        self.cancel_grace = cancel_grace
        self.poll_freq = poll_freq
        self._clients: dict[str, Any] = {}
        self._cluster: Any = None
        self._lock = asyncio.Lock()

    # -- the cluster ---------------------------------------------------------------------

    async def _scheduler(self) -> str:
        """The scheduler's address; a LocalCluster of this service when none is given."""
        if self.address:
            return self.address
        async with self._lock:
            if self._cluster is None:
                from distributed import LocalCluster

                self._cluster = await LocalCluster(
                    n_workers=self.n_workers or os.cpu_count() or 1,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    asynchronous=True,
                )
        return str(self._cluster.scheduler_address)

    async def client(self, address: str | None = None) -> Any:
        """An asynchronous Dask client of ``address`` (default: this executor's cluster)."""
        address = address or await self._scheduler()
        client = self._clients.get(address)
        if client is not None and client.status == "running":
            return client
        from distributed import Client

        try:
            client = await Client(address, asynchronous=True, timeout=self.connect_timeout)
        except (OSError, asyncio.TimeoutError, TimeoutError) as exc:
            raise DaskSchedulerError(
                f"cannot reach the Dask scheduler at {address} within "
                f"{self.connect_timeout:g} s ({exc}); is `dask scheduler` running there and "
                "the address right (scheduler_address, or [executors.dask] in the config)?"
            ) from None
        self._clients[address] = client
        return client

    @staticmethod
    async def _workers(client: Any) -> set[str]:
        info = await client.scheduler.identity()
        return set(info.get("workers", {}))

    # -- stages --------------------------------------------------------------------------

    @staticmethod
    def names(task: TaskContext, attempt: str) -> dict[str, str]:
        """The Dask key and variables of one attempt to run the task."""
        base = f"covalent-core-{task.dispatch_id}-{task.node_id}-{attempt}"
        return {"key": base, "handle": f"{base}-handle", "gate": f"{base}-gate"}

    def _workdir(self, task: TaskContext) -> str | None:
        if not self.workdir:
            return None
        if self.create_unique_workdir:
            return posixpath.join(self.workdir, task.dispatch_id, f"node_{task.node_id}")
        return self.workdir

    async def pickle(self, task: TaskContext) -> None:
        task.payload = task.build_payload(cwd=self._workdir(task))

    async def run(self, task: TaskContext) -> None:
        """Submit the task; store its handle once its process exists (held at its gate),
        then let it run and wait, watching that its worker stays alive."""
        from distributed import Variable

        client = await self.client()
        names = self.names(task, uuid.uuid4().hex[:12])
        task.state["names"] = names
        future = client.submit(
            on_worker.run_task,
            task.payload,
            f"{task.dispatch_id}-{task.node_id}",
            names["handle"],
            names["gate"],
            self._workdir(task),
            key=names["key"],
            pure=False,
        )
        task.state["future"] = future
        gate = Variable(names["gate"], client=client)
        try:
            handle = await self._published(client, names, future)
            if handle is None:  # failed before it started (e.g. covalent-dask not on the worker)
                task.state["result"] = {"error": str(await _exception(future))}
                return
            handle["scheduler"] = client.scheduler.address
            handle["key"] = names["key"]
            task.state["handle"] = handle
            await task.set_job_handle(handle)
            task.check_cancelled("run")
            await gate.set(on_worker.GO)
        except BaseException:
            # Cancelled (or failed) before the task may run: it never will.
            with contextlib.suppress(Exception):
                await asyncio.shield(gate.set(on_worker.STOP))
                await asyncio.shield(client.cancel(future))
            raise
        task.state["result"] = await self._wait(client, future, handle)

    async def _published(self, client: Any, names: dict[str, str], future: Any) -> Any:
        """The handle the task publishes once its process exists; None if it failed first."""
        from distributed import Variable

        getting = asyncio.ensure_future(Variable(names["handle"], client=client).get())
        ended = asyncio.ensure_future(_settled(future))
        try:
            await asyncio.wait({getting, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if getting.done():
            return dict(getting.result())
        getting.cancel()
        return None

    async def _wait(self, client: Any, future: Any, handle: dict[str, Any]) -> dict[str, Any]:
        """The task's result; a lost-worker result if its worker leaves the cluster."""
        ended = asyncio.ensure_future(_settled(future))
        try:
            while True:
                done, _ = await asyncio.wait({ended}, timeout=self.poll_freq)
                if done:
                    break
                if handle["worker"] not in await self._workers(client):
                    await self._lost(client, future, handle)
                    return {on_worker.LOST: handle["worker"]}
        finally:
            ended.cancel()
        if future.status == "finished":
            return dict(await future)
        if future.status == "cancelled":
            return {"stopped": True}
        return {"error": str(await _exception(future))}

    async def _lost(self, client: Any, future: Any, handle: dict[str, Any]) -> None:
        """The task's worker left: Dask must not start the task again elsewhere, and what
        is left of it on this machine (a worker killed, not its host) is stopped."""
        with contextlib.suppress(Exception):
            await client.cancel(future)
        if handle.get("host") == socket.gethostname():
            await on_worker.kill_task(handle, self.cancel_grace)

    async def reattach(self, task: TaskContext, job_handle: str | None) -> bool:
        """Wait again for a task a dead dispatcher started, by its process on its worker.

        Without a handle the task never ran: its attempt waits at its gate for an answer
        nobody will give, and ends without running; the dispatcher starts it again."""
        if job_handle is None:
            return False
        handle = json.loads(job_handle)
        task.state["handle"] = handle
        client = await self.client(handle["scheduler"])
        from distributed import Variable

        # A dispatcher that died between storing the handle and answering: answer for it.
        with contextlib.suppress(Exception):
            await Variable(handle["gate"], client=client).set(on_worker.GO)
        while True:
            if handle["worker"] not in await self._workers(client):
                raise JobLostError(
                    f"the Dask worker {handle['worker']} that ran the task has left the "
                    f"cluster at {handle['scheduler']}; the task was not run again"
                )
            answer = await self._on_worker(
                client, handle, on_worker.task_outcome, handle, handle["dir"], self.poll_freq
            )
            if "running" not in answer:
                break
        if on_worker.LOST in answer:
            raise JobLostError(answer[on_worker.LOST])
        if answer.get("never_started"):
            return False
        task.state["result"] = answer
        return True

    async def fetch(self, task: TaskContext) -> None:
        """The outcome the task's process wrote, with its output (sent back by the worker)."""
        result = task.state.get("result") or {}
        if on_worker.LOST in result:
            task.outcome = TaskOutcome.died(
                f"the Dask worker {result[on_worker.LOST]} running the task died or left the "
                "cluster; the task was not run again"
            )
        elif "error" in result:
            task.outcome = TaskOutcome.died(f"the Dask task failed: {result['error']}")
        elif result.get("stopped"):
            task.outcome = TaskOutcome.died("the task was stopped before it started")
        else:
            task.outcome = TaskOutcome(**result["outcome"])

    async def cleanup(self, task: TaskContext) -> None:
        """Keep what a stopped task printed; remove its directory on its worker and its
        Dask variables."""
        result = task.state.get("result") or {}
        handle = task.state.get("handle")
        if task.outcome is None and "outcome" in result:  # stopped: what it printed
            task.streams = (result["outcome"]["stdout"], result["outcome"]["stderr"])
        if handle is None and "names" not in task.state:
            return
        with contextlib.suppress(Exception):
            client = await self.client(handle["scheduler"] if handle else None)
            if task.outcome is None and not any(task.streams or ()) and handle is not None:
                files = await self._on_worker(client, handle, on_worker.collect, handle["dir"])
                task.streams = TaskOutcome.texts(files["stdout"], files["stderr"])
            if handle is not None:
                await self._on_worker(client, handle, on_worker.remove_directory, handle["dir"])
        names = task.state.get("names")
        # After a lost worker the handle stays published: an attempt Dask may yet start
        # elsewhere finds it and does not run the task a second time.
        if names and on_worker.LOST not in result:
            from distributed import Variable

            with contextlib.suppress(Exception):
                client = await self.client()
                for var in (names["handle"], names["gate"]):
                    await Variable(var, client=client).delete()

    async def _on_worker(self, client: Any, handle: dict[str, Any], fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the task's worker (``Client.run``) and return its answer."""
        answers = await client.run(fn, *args, workers=[handle["worker"]])
        if handle["worker"] not in answers:
            raise JobLostError(f"the Dask worker {handle['worker']} is gone")
        return answers[handle["worker"]]

    # -- watching and cancelling ---------------------------------------------------------

    async def read_output(
        self, task_metadata: dict[str, Any], job_handle: str, stream: str
    ) -> str | None:
        """The task's ``stdout`` or ``stderr`` file as it is now, read on its worker."""
        handle = json.loads(job_handle)
        client = await self.client(handle["scheduler"])
        path = posixpath.join(handle["dir"], stream)
        data = await self._on_worker(client, handle, on_worker.read_file, path)
        return None if data is None else data.decode(errors="replace")

    async def cancel(self, task_metadata: dict[str, Any], job_handle: str) -> bool:
        """Kill the task's process group on its worker (TERM, grace, KILL; its start time
        checked), then release its Dask future. True once the process is gone."""
        handle = json.loads(job_handle)
        client = await self.client(handle["scheduler"])
        if handle["worker"] in await self._workers(client):
            try:
                gone = await self._on_worker(
                    client, handle, on_worker.kill_task, handle, self.cancel_grace
                )
            except JobLostError:
                gone = True  # the worker left meanwhile, and its processes with it
        else:
            gone = True  # a worker that left the cluster took its tasks with it
        with contextlib.suppress(Exception):
            from distributed import Future

            await client.cancel([Future(handle["key"], client=client)])
        return bool(gone)

    async def close(self) -> None:
        """Close the clients, and stop the LocalCluster this executor started."""
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.close()
        self._clients.clear()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                await self._cluster.close()
            self._cluster = None


async def _settled(future: Any) -> None:
    """Return once ``future`` finished, failed or was cancelled."""
    with contextlib.suppress(BaseException):
        await future


async def _exception(future: Any) -> BaseException | None:
    try:
        return await future.exception()
    except BaseException as exc:  # cancelled
        return exc
