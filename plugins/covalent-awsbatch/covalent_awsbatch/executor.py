"""AWSBatchExecutor: each task an AWS Batch job; cancel is ``terminate_job``, confirmed."""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any, ClassVar

from covalent_aws import S3, AWSConfig, AWSError, call

from covalent_core.errors import ExecutorConfigError, JobLostError
from covalent_core.sdk import (
    BatchedPoller,
    Executor,
    TaskContext,
    TaskOutcome,
    shared_poller,
    wait_until_gone,
)

from . import remote
from .states import STOPPED, describe_end


class AWSBatchExecutor(Executor):
    """Runs each task as an AWS Batch job.

    Options follow Covalent's AWS Batch plugin: ``region``, ``profile``, ``credentials`` (a
    credentials file), ``s3_bucket_name``, ``batch_queue``, ``container_image_uri``, ``vcpu``,
    ``memory`` (GiB), ``num_gpus``, ``batch_job_role_name``, ``batch_execution_role_name``,
    ``batch_job_log_group_name``, ``retry_attempts``, ``time_limit`` (seconds), ``poll_freq``.
    Without ``container_image_uri`` jobs use Covalent's executor image (the job's program
    needs only Python, boto3 and cloudpickle); ``cache_dir`` is accepted and unused.
    Also ``endpoint_url`` (every service) and ``service_endpoints`` (per service, e.g.
    ``{"s3": ...}``) for private endpoints and tests, ``container_python`` (the image's
    interpreter) and ``cleanup``.
    """

    short_name: ClassVar[str] = "awsbatch"
    cancel_bound: ClassVar[float] = 60.0

    def __init__(
        self,
        s3_bucket_name: str = "",
        batch_queue: str = "",
        container_image_uri: str = "",
        region: str | None = None,
        profile: str | None = None,
        credentials: str | None = None,
        vcpu: int = 2,
        memory: float = 3.75,
        num_gpus: int = 0,
        batch_job_role_name: str | None = None,
        batch_execution_role_name: str | None = None,
        batch_job_log_group_name: str = "/aws/batch/job",
        retry_attempts: int = 1,
        time_limit: int = 300,
        poll_freq: float = 5.0,
        endpoint_url: str | None = None,
        service_endpoints: dict[str, str] | None = None,
        container_python: str = "python",
        cleanup: bool = True,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        container_image_uri = container_image_uri or remote.DEFAULT_IMAGE
        self.cache_dir = cache_dir
        required = {"s3_bucket_name": s3_bucket_name, "batch_queue": batch_queue}
        missing = [name for name, value in required.items() if not value]
        if missing:
            raise ExecutorConfigError(f"AWSBatchExecutor needs {', '.join(missing)}")
        self.aws = AWSConfig(
            region=region,
            profile=profile,
            credentials=credentials,
            endpoint_url=endpoint_url,
            service_endpoints=tuple(sorted((service_endpoints or {}).items())),
        )
        self.bucket = s3_bucket_name
        self.queue = batch_queue
        self.image = container_image_uri
        self.vcpu, self.memory, self.num_gpus = vcpu, memory, num_gpus
        self.job_role, self.execution_role = batch_job_role_name, batch_execution_role_name
        self.log_group = batch_job_log_group_name
        self.retry_attempts = retry_attempts
        self.time_limit = time_limit
        self.poll_freq = poll_freq
        self.container_python = container_python
        self.do_cleanup = cleanup
        self._batch: Any = None
        self._s3: S3 | None = None
        self._definition: str | None = None

    # -- clients ---------------------------------------------------------------------------

    @property
    def batch(self) -> Any:
        if self._batch is None:
            self._batch = self.aws.client("batch")
        return self._batch

    @property
    def s3(self) -> S3:
        if self._s3 is None:
            self._s3 = S3(self.aws, self.bucket)
        return self._s3

    def prefix(self, task: TaskContext) -> str:
        return f"covalent/{task.dispatch_id}/{task.node_id}"

    async def describe(self, ids: list[str]) -> dict[str, Any]:
        """The jobs AWS knows among ``ids``: one ``describe_jobs`` call (up to 100)."""
        reply = await call("describe_jobs", self.batch.describe_jobs, jobs=ids)
        return {job["jobId"]: job for job in reply.get("jobs", [])}

    async def _ended(self, ids: list[str]) -> dict[str, Any]:
        """The stopped jobs among ``ids`` (an unknown one maps to None)."""
        found = await self.describe(ids)
        return {i: found.get(i) for i in ids if i not in found or found[i]["status"] in STOPPED}

    def _poller(self) -> BatchedPoller:
        return shared_poller((self.aws, self.queue), self._ended, self.poll_freq)

    # -- stages ----------------------------------------------------------------------------

    async def pickle(self, task: TaskContext) -> None:
        """The payload, to run in the container's working directory."""
        task.payload = task.build_payload(cwd=".")

    async def upload(self, task: TaskContext) -> None:
        """Put the payload in S3 (checking the bucket first)."""
        await self.s3.check_bucket()
        task.check_cancelled("upload")
        task.state["uploaded"] = True
        await self.s3.put(f"{self.prefix(task)}/payload", task.payload or b"")

    def _definition_body(self) -> dict[str, Any]:
        resources = [
            {"type": "VCPU", "value": str(self.vcpu)},
            {"type": "MEMORY", "value": str(int(self.memory * 1024))},
        ]
        if self.num_gpus:
            resources.append({"type": "GPU", "value": str(self.num_gpus)})
        environment = []
        s3_endpoint = dict(self.aws.service_endpoints).get("s3", self.aws.endpoint_url)
        if s3_endpoint:
            environment.append({"name": "COVALENT_S3_ENDPOINT_URL", "value": s3_endpoint})
        props: dict[str, Any] = {
            "image": self.image,
            "resourceRequirements": resources,
            "environment": environment,
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": self.log_group},
            },
        }
        return {"type": "container", "containerProperties": props}

    async def _role_arn(self, name: str | None) -> str | None:
        if not name:
            return None
        iam = self.aws.client("iam")
        reply = await call(f"looking up IAM role {name!r}", iam.get_role, RoleName=name)
        return str(reply["Role"]["Arn"])

    async def provision(self, task: TaskContext) -> None:
        """Register the job definition, or reuse the one with the same content."""
        if self._definition is not None:
            return
        body = self._definition_body()
        props = body["containerProperties"]
        if role := await self._role_arn(self.job_role):
            props["jobRoleArn"] = role
        if role := await self._role_arn(self.execution_role):
            props["executionRoleArn"] = role
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        name = f"covalent-{digest}"
        found = await call(
            "describe_job_definitions",
            self.batch.describe_job_definitions,
            jobDefinitionName=name,
            status="ACTIVE",
        )
        existing = sorted(found.get("jobDefinitions", []), key=lambda d: d.get("revision", 0))
        if existing:
            self._definition = existing[-1]["jobDefinitionArn"]
            return
        reply = await call(
            "register_job_definition",
            self.batch.register_job_definition,
            jobDefinitionName=name,
            **body,
        )
        self._definition = reply["jobDefinitionArn"]

    async def run(self, task: TaskContext) -> None:
        """Submit the job; its handle is stored at once; wait with batched describe_jobs."""
        assert self._definition is not None
        command = remote.command(self.container_python, f"s3://{self.bucket}/{self.prefix(task)}")
        reply = await call(
            "submit_job",
            self.batch.submit_job,
            jobName=self.job_name(task),
            jobQueue=self.queue,
            jobDefinition=self._definition,
            containerOverrides={"command": command},
            timeout={"attemptDurationSeconds": max(60, int(self.time_limit))},
            retryStrategy={"attempts": max(1, int(self.retry_attempts))},
        )
        job_id = reply["jobId"]
        task.state["job_id"] = job_id
        await task.set_job_handle({"region": self.aws.region or "", "job_id": job_id})
        task.state["job"] = await self._poller().wait(job_id)

    @staticmethod
    def job_name(task: TaskContext) -> str:
        """The job's name: the task's full ids, by which a new dispatcher finds the job."""
        return f"covalent-{task.dispatch_id}-{task.node_id}"

    async def reattach(self, task: TaskContext, job_handle: str | None) -> bool:
        """Wait again for the job a dead dispatcher submitted; find it if no handle was stored.

        Without a handle the job is looked up by its name in the queue (any status): found,
        it is adopted; not found, it was never submitted (False).
        """
        task.state["uploaded"] = True  # cleanup removes the task's objects whatever happened
        if job_handle is None:
            reply = await call(
                "list_jobs",
                self.batch.list_jobs,
                jobQueue=self.queue,
                filters=[{"name": "JOB_NAME", "values": [self.job_name(task)]}],
            )
            found = reply.get("jobSummaryList", [])
            if not found:
                return False
            job_id = max(found, key=lambda j: j.get("createdAt", 0))["jobId"]
            await task.set_job_handle({"region": self.aws.region or "", "job_id": job_id})
        else:
            job_id = json.loads(job_handle)["job_id"]
        task.state["job_id"] = job_id
        job = await self._poller().wait(job_id)
        if job is None and await self.s3.get(f"{self.prefix(task)}/outcome") is None:
            raise JobLostError(
                f"AWS Batch in {self.aws.region or 'the default region'} no longer knows job "
                f"{job_id}, and s3://{self.bucket}/{self.prefix(task)}/ holds no outcome"
            )
        task.state["job"] = job
        return True

    async def fetch(self, task: TaskContext) -> None:
        """Read the outcome from S3 and the job's output from CloudWatch Logs."""
        job = task.state.get("job") or {}
        logs = await self._logs(job)
        outcome = await self.s3.get(f"{self.prefix(task)}/outcome")
        task.outcome = TaskOutcome.from_files(
            outcome, logs.encode(), None, lambda: describe_end(task.state.get("job_id", ""), job)
        )

    async def _logs(self, job: dict[str, Any]) -> str:
        """The job's log stream in CloudWatch Logs, every page of it; "" if there is none."""
        stream = job.get("container", {}).get("logStreamName")
        if not stream:
            return ""
        client = self.aws.client("logs")
        messages: list[str] = []
        token: str | None = None
        try:
            while True:
                page = {"nextToken": token} if token else {}
                reply = await call(
                    "get_log_events",
                    client.get_log_events,
                    logGroupName=self.log_group,
                    logStreamName=stream,
                    startFromHead=True,
                    **page,
                )
                messages += (e["message"] for e in reply.get("events", []))
                # The last page gives back the token it was asked with.
                if not reply.get("events") or reply.get("nextForwardToken") in (None, token):
                    break
                token = reply["nextForwardToken"]
        except AWSError:
            pass  # logs arrive late or not at all; the outcome does not depend on them
        return "".join(f"{message}\n" for message in messages)  # one event per line

    async def read_output(
        self, task_metadata: dict[str, Any], job_handle: str, stream: str
    ) -> str | None:
        """What the job has logged so far to CloudWatch Logs (Batch sends stdout and stderr
        to one log stream: it is read as stdout; stderr is empty)."""
        if stream != "stdout":
            return ""
        job_id = json.loads(job_handle)["job_id"]
        job = (await self.describe([job_id])).get(job_id) or {}
        return await self._logs(job)

    async def cleanup(self, task: TaskContext) -> None:
        """Keep what a cancelled job printed (CloudWatch Logs); delete the task's S3 objects
        (unless ``cleanup=False``)."""
        job_id = task.state.get("job_id")
        if task.outcome is None and job_id:
            with contextlib.suppress(Exception):
                job = (await self.describe([job_id])).get(job_id) or {}
                task.streams = (await self._logs(job), "")
        if self.do_cleanup and task.state.get("uploaded"):
            await self.s3.delete_prefix(f"{self.prefix(task)}/")

    async def cancel(self, task_metadata: dict[str, Any], job_handle: str) -> bool:
        """``terminate_job`` (queued or running) with a reason naming the task; confirmed."""
        job_id = json.loads(job_handle)["job_id"]
        reason = (
            f"covalent-core: cancel of dispatch {task_metadata.get('dispatch_id')} "
            f"node {task_metadata.get('node_id')}"
        )
        try:
            await call("terminate_job", self.batch.terminate_job, jobId=job_id, reason=reason)
        except AWSError as exc:
            if "not found" in exc.aws_message.lower():
                return True  # AWS no longer knows the job: it ended long ago
            raise

        async def stopped() -> bool:
            job = (await self.describe([job_id])).get(job_id)
            return job is None or job["status"] in STOPPED

        return await wait_until_gone(stopped, self.cancel_bound, interval=0.2)
