"""BraketExecutor: run quantum programs on Amazon Braket devices, and cancel them for real."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import cloudpickle
from covalent_aws import S3, AWSConfig, AWSError, call, error_code

from covalent_core.errors import ExecutorConfigError, JobLostError
from covalent_core.permissions import private_open
from covalent_core.plain_pickle import loads_plain
from covalent_core.sdk import (
    BatchedPoller,
    Executor,
    GatedProcess,
    ProcessHandle,
    TaskContext,
    TaskOutcome,
    WorkerPool,
    describe_exit,
    kill_group,
    shared_poller,
    start_gated,
    wait_for_exit,
    wait_until_gone,
)
from covalent_core.serialize import task_payload

from .states import TERMINAL, describe_failure


class BraketExecutor(Executor):
    """Runs an electron's quantum program on a Braket device.

    The electron returns a Braket ``Circuit`` or OpenQASM text; the executor creates the
    quantum task on ``device_arn`` with ``shots`` (and ``device_parameters``), stores its ARN
    as the job handle, polls it and returns ``{"measurement_counts", "measurement_probabilities",
    ...}``. ``device_arn="local:braket_sv"`` (or another local simulator) runs without AWS.
    With ``hybrid=True`` the electron is a Python function that submits its own quantum tasks
    (a variational loop): it runs in a killable local process, every task it creates is
    recorded against the node, and a cancel kills the loop and cancels each unfinished task.

    Other options: ``s3_bucket_name`` and ``s3_prefix`` (where Braket writes results),
    ``region``, ``profile``, ``credentials``, ``endpoint_url``, ``service_endpoints``,
    ``poll_freq``, ``workdir`` (local scratch), ``cancel_grace``, ``cleanup``.

    Covalent's Braket plugin runs each electron as a Braket Hybrid Job whose code reads the
    device from ``AMZN_BRAKET_DEVICE_ARN``. Its options are accepted: ``quantum_device`` is
    ``device_arn``, and passing it (or any of ``ecr_image_uri``, ``classical_device``,
    ``storage``, ``braket_job_execution_role_name``) makes the electron a hybrid one unless
    ``hybrid`` says otherwise; the classical part then runs in a killable local process with
    ``AMZN_BRAKET_DEVICE_ARN`` set, instead of a job container, so the container options are
    recorded without effect, as are ``cache_dir`` and ``log_group_name``. ``time_limit``
    (seconds; -1: none) stops a hybrid electron that runs longer; it fails.
    """

    short_name: ClassVar[str] = "braket"
    cancel_bound: ClassVar[float] = 30.0

    def __init__(
        self,
        device_arn: str = "local:braket_sv",
        shots: int = 100,
        device_parameters: dict[str, Any] | None = None,
        s3_bucket_name: str = "",
        s3_prefix: str = "covalent-braket",
        hybrid: bool | None = None,
        region: str | None = None,
        profile: str | None = None,
        credentials: str | None = None,
        endpoint_url: str | None = None,
        service_endpoints: dict[str, str] | None = None,
        poll_freq: float = 1.0,
        workdir: str = "~/.cache/covalent-braket",
        cancel_grace: float = 2.0,
        cleanup: bool = True,
        quantum_device: str | None = None,
        ecr_image_uri: str = "",
        braket_job_execution_role_name: str = "",
        classical_device: str = "",
        storage: int = 30,
        time_limit: float = -1,
        cache_dir: str = "",
        log_group_name: str = "",
    ) -> None:
        super().__init__()
        covalent_job = bool(
            quantum_device or ecr_image_uri or classical_device or braket_job_execution_role_name
        )
        if hybrid is None:
            hybrid = covalent_job
        device_arn = quantum_device or device_arn
        self.job_options = {
            "ecr_image_uri": ecr_image_uri,
            "braket_job_execution_role_name": braket_job_execution_role_name,
            "classical_device": classical_device,
            "storage": storage,
            "cache_dir": cache_dir,
            "log_group_name": log_group_name,
        }
        self.time_limit = time_limit
        self.device_arn = device_arn
        self.local = device_arn.startswith("local")
        if not self.local and not s3_bucket_name:
            raise ExecutorConfigError(
                f"BraketExecutor on {device_arn} needs s3_bucket_name (where Braket writes "
                "results); use device_arn='local:braket_sv' to run without AWS"
            )
        self.shots = int(shots)
        self.device_parameters = device_parameters
        self.bucket, self.s3_prefix = s3_bucket_name, s3_prefix
        self.hybrid = hybrid
        self.aws = AWSConfig(
            region=region,
            profile=profile,
            credentials=credentials,
            endpoint_url=endpoint_url,
            service_endpoints=tuple(sorted((service_endpoints or {}).items())),
        )
        self.poll_freq = poll_freq
        self.workdir = Path(os.path.expanduser(workdir))
        self.cancel_grace = cancel_grace
        self.do_cleanup = cleanup
        self._braket: Any = None
        self._session: Any = None
        self._builders = WorkerPool(sys.executable, max_workers=4)

    # -- AWS -------------------------------------------------------------------------------

    @property
    def braket(self) -> Any:
        if self._braket is None:
            self._braket = self.aws.client("braket")
        return self._braket

    def _prefix(self, task: TaskContext) -> str:
        return f"{self.s3_prefix}/{task.dispatch_id}/{task.node_id}"

    async def describe(self, arns: list[str]) -> dict[str, Any]:
        """Status of up to 20 quantum tasks in one ``SearchQuantumTasks`` call."""
        reply = await call(
            "search_quantum_tasks",
            self.braket.search_quantum_tasks,
            filters=[{"name": "quantumTaskArn", "operator": "EQUAL", "values": arns}],
        )
        return {t["quantumTaskArn"]: t for t in reply.get("quantumTasks", [])}

    async def _ended(self, arns: list[str]) -> dict[str, Any]:
        """The quantum tasks among ``arns`` that ended (an unknown one maps to None)."""
        found = await self.describe(arns)
        return {a: found.get(a) for a in arns if a not in found or found[a]["status"] in TERMINAL}

    def _poller(self) -> BatchedPoller:
        return shared_poller(self.aws, self._ended, self.poll_freq, batch=20)

    # -- stages ----------------------------------------------------------------------------

    def task_dir(self, task: TaskContext) -> Path:
        return self.workdir / f"{task.dispatch_id}-{task.node_id}"

    async def upload(self, task: TaskContext) -> None:
        """Write the payload locally; for a device, check the results bucket first."""
        if not self.local:
            await S3(self.aws, self.bucket).check_bucket()
        directory = self.task_dir(task)
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        task.state["dir"] = directory
        await asyncio.to_thread((directory / "payload").write_bytes, task.payload or b"")

    async def provision(self, task: TaskContext) -> None:
        """For a device: build the program by running the electron in a killable process."""
        if self.local or self.hybrid:
            return
        # Warm workers: importing the Braket SDK once, not once per task. The worker runs the
        # electron and hands back OpenQASM source, read here as plain text (nothing unpickled).
        from braket.ir.openqasm import Program  # imported when first needed

        from .programs import program_source

        function, args, kwargs, environment = loads_plain(task.payload or b"")
        payload = task_payload(
            cloudpickle.dumps(program_source), [function, *args], kwargs, environment
        )
        build = task.state["dir"] / "build"
        outcome = await self._builders.run(payload, build, kill_grace=self.cancel_grace)
        if not outcome.ok:
            task.outcome = outcome
            return
        task.state["program"] = Program(source=loads_plain(outcome.output or b""))

    async def _start(self, task: TaskContext, mode: list[str]) -> GatedProcess:
        directory = task.state["dir"]
        env = dict(os.environ)
        endpoints = dict(self.aws.service_endpoints)
        if endpoints.get("braket") or self.aws.endpoint_url:
            env["BRAKET_ENDPOINT"] = endpoints.get("braket") or self.aws.endpoint_url or ""
        if endpoints.get("s3") or self.aws.endpoint_url:
            env["AWS_ENDPOINT_URL_S3"] = endpoints.get("s3") or self.aws.endpoint_url or ""
        if self.aws.region:
            env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = self.aws.region
        if self.aws.profile:
            env["AWS_PROFILE"] = self.aws.profile
        if self.aws.credentials:
            env["AWS_SHARED_CREDENTIALS_FILE"] = os.path.expanduser(self.aws.credentials)
        env["AMZN_BRAKET_DEVICE_ARN"] = self.device_arn  # as inside a Braket Hybrid Job
        argv = [sys.executable, "-m", "covalent_braket.remote", mode[0], "payload", "outcome"]
        argv += mode[1:]
        with (
            private_open(directory / "stdout", "wb") as out,
            private_open(directory / "stderr", "wb") as err,
        ):
            return await start_gated(
                argv, directory / "started", cwd=directory, env=env, stdout=out, stderr=err
            )

    def _outcome(self, task: TaskContext, code: int | None) -> TaskOutcome:
        directory: Path = task.state["dir"]
        out = (directory / "stdout").read_text(errors="replace")
        err = (directory / "stderr").read_text(errors="replace")
        if (directory / "outcome").exists():
            outcome = TaskOutcome.from_runner((directory / "outcome").read_bytes(), out, err)
            (directory / "outcome").unlink()
            return outcome
        return TaskOutcome.died(describe_exit(code), out, err)

    async def run(self, task: TaskContext) -> None:
        """Create the quantum task (its ARN stored at once) and wait; or run the local process."""
        if task.outcome is not None:  # building the program failed
            return
        if self.local or self.hybrid:
            arns = task.state["dir"] / "arns"
            mode = (
                ["local", "-", self.device_arn, str(self.shots)]
                if self.local
                else ["hybrid", str(arns)]
            )
            proc = await self._start(task, mode)
            handle = {
                **proc.handle.to_dict(),
                "arns_file": str(arns),
                "region": self.aws.region or "",
                "dir": str(task.state["dir"]),  # its stdout and stderr, read while it runs
            }
            await task.set_job_handle(handle)
            await proc.release()
            try:
                code = await asyncio.wait_for(proc.wait(), self._remaining(time.time()))
            except asyncio.TimeoutError:
                await self._stop_at_time_limit(task)
                return
            task.state["outcome"] = self._outcome(task, code)
            return
        create = asyncio.ensure_future(self._create(task))
        try:
            await asyncio.shield(create)
        except asyncio.CancelledError:
            # The quantum task may exist already: its ARN is stored (and so cancelled) first.
            await asyncio.gather(create, return_exceptions=True)
            raise
        task.state["quantum_task"] = await self._poller().wait(task.state["arn"])

    def _remaining(self, started: float) -> float | None:
        """Seconds a local process started at ``started`` may still run (``time_limit``)."""
        if not self.time_limit or self.time_limit <= 0:
            return None
        return max(0.0, started + self.time_limit - time.time())

    async def _stop_at_time_limit(self, task: TaskContext) -> None:
        """The same stop as a cancel: the loop and every quantum task it created."""
        assert task.job_handle is not None
        await self.cancel(task.metadata, task.job_handle)
        task.state["outcome"] = TaskOutcome.died(
            f"the electron reached the executor's time_limit of {self.time_limit:g} s "
            "and was stopped"
        )

    async def reattach(self, task: TaskContext, job_handle: str | None) -> bool:
        """Wait again for what a dead dispatcher started: a quantum task, or a local process.

        Without a handle nothing needs finding: a quantum task is created again with the
        task's client token, which gives back the one that exists, and a local process runs
        only once its handle is stored.
        """
        directory = self.task_dir(task)
        task.state["dir"] = directory
        if job_handle is None:
            return False
        handle = json.loads(job_handle)
        if "arn" in handle:
            task.state["arn"] = handle["arn"]
            info = await self._poller().wait(handle["arn"])
            if info is None:
                raise JobLostError(f"Braket no longer knows quantum task {handle['arn']}")
            task.state["quantum_task"] = info
            return True
        process = ProcessHandle.from_json(job_handle)
        task.job_handle = job_handle
        mark = directory / "started"
        began = mark.stat().st_mtime if mark.exists() else time.time()
        try:
            await asyncio.wait_for(wait_for_exit(process), self._remaining(began))
        except asyncio.TimeoutError:
            await self._stop_at_time_limit(task)
            return True
        if not mark.exists():
            return False  # it exited at its gate: nothing ran
        if not (directory / "outcome").exists():
            await self.cancel(task.metadata, job_handle)  # the quantum tasks it left running
            raise JobLostError(
                f"the electron's process {process.pid} is gone and left no outcome in {directory}"
            )
        task.state["outcome"] = self._outcome(task, None)
        return True

    async def _create(self, task: TaskContext) -> None:
        from braket.aws import AwsQuantumTask

        from .programs import CLIENT_TOKEN, IdempotentSession

        if self._session is None:
            self._session = IdempotentSession(
                boto_session=self.aws.session(), braket_client=self.braket
            )
        session = self._session
        tags = {"covalent-dispatch": task.dispatch_id, "covalent-node": str(task.node_id)}
        # The same token for the same task: creating it again gives back the same quantum task.
        CLIENT_TOKEN.set(
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"covalent-core:{task.dispatch_id}:{task.node_id}"))
        )
        quantum_task = await call(
            f"creating a quantum task on {self.device_arn}",
            AwsQuantumTask.create,
            aws_session=session,
            device_arn=self.device_arn,
            task_specification=task.state["program"],
            s3_destination_folder=(self.bucket, self._prefix(task)),
            shots=self.shots,
            device_parameters=self.device_parameters,
            tags=tags,
            quiet=True,
        )
        task.state["arn"] = quantum_task.id
        await task.set_job_handle({"region": self.aws.region or "", "arn": quantum_task.id})

    async def fetch(self, task: TaskContext) -> None:
        """The result: counts and probabilities from the results Braket wrote to S3."""
        if task.outcome is not None:
            return
        if "outcome" in task.state:
            task.outcome = task.state.pop("outcome")
            return
        info = task.state.get("quantum_task") or {}
        arn = task.state.get("arn")
        status = info.get("status", "UNKNOWN")
        if status == "COMPLETED":
            from braket.tasks import GateModelQuantumTaskResult

            from .programs import summary

            s3 = S3(self.aws, info["outputS3Bucket"])
            text = await s3.get(f"{info['outputS3Directory']}/results.json")
            if text is None:
                task.outcome = TaskOutcome.died(f"quantum task {arn} COMPLETED without results")
                return
            result = await asyncio.to_thread(GateModelQuantumTaskResult.from_string, text.decode())
            output = summary(result, arn, self.device_arn)
            task.outcome = TaskOutcome(ok=True, output=cloudpickle.dumps(output))
            return
        reason = await self._failure_reason(arn) if arn and status != "CANCELLED" else None
        task.outcome = TaskOutcome.died(describe_failure(arn, status, reason))

    async def _failure_reason(self, arn: str) -> str | None:
        reply = await call("get_quantum_task", self.braket.get_quantum_task, quantumTaskArn=arn)
        return reply.get("failureReason")

    async def cleanup(self, task: TaskContext) -> None:
        """Remove the local scratch directory and the task's results in S3."""
        directory = task.state.get("dir")
        if directory is not None and task.outcome is None:  # stopped: keep what it printed
            with contextlib.suppress(OSError):
                task.streams = tuple(  # type: ignore[assignment]
                    (Path(directory) / name).read_text(errors="replace")
                    for name in ("stdout", "stderr")
                )
        if directory is not None:
            await asyncio.to_thread(shutil.rmtree, directory, True)
        if self.do_cleanup and not self.local and "arn" in task.state:
            await S3(self.aws, self.bucket).delete_prefix(f"{self._prefix(task)}/")

    # -- cancel ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the program-building workers."""
        await self._builders.close()

    async def cancel(self, task_metadata: dict[str, Any], job_handle: str) -> bool:
        """Kill the local process (if any), then cancel every unfinished quantum task."""
        handle = json.loads(job_handle)
        arns: list[str] = []
        if "arn" in handle:
            arns = [handle["arn"]]
        else:
            process = ProcessHandle.from_json(job_handle)
            if not await asyncio.to_thread(kill_group, process, self.cancel_grace):
                return False
            path = Path(handle.get("arns_file") or "/nonexistent")
            if path.exists():
                arns = [a for a in path.read_text().split() if a]
        return await self.cancel_quantum_tasks(arns)

    async def cancel_quantum_tasks(self, arns: list[str]) -> bool:
        """``CancelQuantumTask`` each unfinished one; True once all are CANCELLED or ended."""
        if not arns:
            return True
        for arn in arns:
            try:
                await asyncio.to_thread(
                    self.braket.cancel_quantum_task,
                    quantumTaskArn=arn,
                    clientToken=str(uuid.uuid4()),
                )
            except Exception as exc:
                if error_code(exc) not in ("ConflictException", "ResourceNotFoundException"):
                    raise AWSError(f"cancel_quantum_task {arn} failed: {exc}") from None

        async def all_final() -> bool:
            states: dict[str, Any] = {}
            for start in range(0, len(arns), 20):
                states.update(await self.describe(arns[start : start + 20]))
            return all(states.get(a, {}).get("status", "CANCELLED") in TERMINAL for a in arns)

        return await wait_until_gone(all_final, self.cancel_bound)
