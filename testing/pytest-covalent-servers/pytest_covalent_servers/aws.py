"""AWS for the tests, on 127.0.0.1: a real moto server (S3, CloudWatch Logs, IAM) and a
**test double** of the AWS Batch job lifecycle.

moto never shows a RUNNING Batch job and ignores ``terminate_job``, so cancelling a running
job cannot be tested against it. ``BatchDouble`` is a small HTTP server speaking the Batch
REST API (the same boto3 calls: register/describe job definitions, describe job queues,
submit, describe and terminate jobs). It runs each job's real command as a local process in
its own session, with the job definition's environment, so the task really executes and
reads and writes the moto S3 bucket; ``terminate_job`` really kills that process group.
The job's output goes to moto's CloudWatch Logs, as Batch's awslogs driver would send it.

Credentials whose access key id starts with ``EXPIRED`` or ``DENIED`` get the errors AWS
returns for them; ``POST /control`` with ``{"throttle": N}`` answers the next N calls with a
throttling error; ``GET /stats`` returns how many calls of each operation it served.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any

import boto3

from covalent_core.sdk.containment import MARK_VARIABLE, kill_task_processes

from .ports import free_port

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
ACTIVE_STATES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")


class JSONHandler(BaseHTTPRequestHandler):
    """What both AWS test doubles speak: JSON bodies, AWS-style errors, the caller's key."""

    def log_message(self, *args: Any) -> None:
        pass

    def body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def access_key(self) -> str:
        key = re.search(r"Credential=([^/]+)/", self.headers.get("Authorization", ""))
        return key.group(1) if key else ""

    def reply(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if status >= 400:
            self.send_header("x-amzn-ErrorType", data.get("__type", "ClientException"))
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class MotoServer:
    """``moto_server`` in its own process on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.05)

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def stop(self) -> None:
        # moto_server sometimes ignores its first SIGTERM.
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Job:
    job_id: str
    name: str
    queue: str
    definition: dict[str, Any]
    command: list[str]
    environment: dict[str, str]
    status: str = "SUBMITTED"
    reason: str = ""
    exit_code: int | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    stopped: float | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_stream: str = ""
    output: list[bytes] = field(default_factory=list)
    reader: threading.Thread | None = None

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "jobArn": f"arn:aws:batch:{REGION}:123456789012:job/{self.job_id}",
            "jobId": self.job_id,
            "jobName": self.name,
            "jobQueue": self.queue,
            "jobDefinition": self.definition["jobDefinitionArn"],
            "status": self.status,
            "createdAt": int(self.created * 1000),
            "container": {"command": self.command, "logStreamName": self.log_stream},
        }
        if self.reason:
            data["statusReason"] = self.reason
        if self.started:
            data["startedAt"] = int(self.started * 1000)
        if self.stopped:
            data["stoppedAt"] = int(self.stopped * 1000)
        if self.exit_code is not None:
            data["container"]["exitCode"] = self.exit_code
        return data


class BatchDouble:
    """The test double of AWS Batch (see the module docstring). Not AWS: labelled as such."""

    def __init__(self, moto: MotoServer, queues: tuple[str, ...] = ("covalent-queue",)) -> None:
        self.moto = moto
        self.queues = set(queues)
        self.definitions: dict[str, list[dict[str, Any]]] = {}
        self.jobs: dict[str, Job] = {}
        self.calls: Counter[str] = Counter()
        self.throttle = 0
        self.start_delay = 0.2
        self.lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        double = self

        class Handler(JSONHandler):
            def do_GET(self) -> None:
                if self.path == "/stats":
                    self.reply(200, dict(double.calls))
                else:
                    self.reply(404, {"message": "not found"})

            def do_POST(self) -> None:
                body = self.body()
                if self.path == "/control":
                    double.throttle = int(body.get("throttle", 0))
                    double.start_delay = float(body.get("start_delay", double.start_delay))
                    self.reply(200, {})
                    return
                operation = self.path.rsplit("/", 1)[-1]
                self.reply(*double.handle(operation, body, self.access_key()))

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.ticker = threading.Thread(target=self._tick, daemon=True)
        self.running = True
        self.ticker.start()

    # -- the API -------------------------------------------------------------------------

    def handle(self, operation: str, body: dict[str, Any], access_key: str) -> tuple[int, Any]:
        self.calls[operation] += 1
        if access_key.startswith("EXPIRED"):
            return 400, {
                "__type": "ExpiredTokenException",
                "message": "The security token included in the request is expired",
            }
        if access_key.startswith("DENIED"):
            return 403, {
                "__type": "AccessDeniedException",
                "message": f"User is not authorized to perform: batch:{operation}",
            }
        if self.throttle > 0:
            self.throttle -= 1
            return 429, {"__type": "TooManyRequestsException", "message": "Too Many Requests"}
        with self.lock:
            method = getattr(self, f"op_{operation}", None)
            if method is None:
                return 400, {"__type": "ClientException", "message": f"{operation} not in double"}
            return method(body)

    def op_registerjobdefinition(self, body: dict[str, Any]) -> tuple[int, Any]:
        name = body["jobDefinitionName"]
        revisions = self.definitions.setdefault(name, [])
        arn = f"arn:aws:batch:{REGION}:123456789012:job-definition/{name}:{len(revisions) + 1}"
        revisions.append(
            {**body, "jobDefinitionArn": arn, "revision": len(revisions) + 1, "status": "ACTIVE"}
        )
        return 200, {"jobDefinitionName": name, "jobDefinitionArn": arn, "revision": len(revisions)}

    def op_describejobdefinitions(self, body: dict[str, Any]) -> tuple[int, Any]:
        name = body.get("jobDefinitionName")
        found = [d for n, defs in self.definitions.items() if name in (None, n) for d in defs]
        return 200, {"jobDefinitions": found}

    def op_describejobqueues(self, body: dict[str, Any]) -> tuple[int, Any]:
        names = body.get("jobQueues") or sorted(self.queues)
        return 200, {
            "jobQueues": [
                {
                    "jobQueueName": q,
                    "jobQueueArn": f"arn:aws:batch:{REGION}:123456789012:job-queue/{q}",
                    "state": "ENABLED",
                    "status": "VALID",
                    "priority": 1,
                    "computeEnvironmentOrder": [],
                }
                for q in names
                if q in self.queues
            ]
        }

    def op_submitjob(self, body: dict[str, Any]) -> tuple[int, Any]:
        queue = body["jobQueue"].rsplit("/", 1)[-1]
        if queue not in self.queues:
            return 400, {"__type": "ClientException", "message": f"Job Queue {queue} not found"}
        ref = body["jobDefinition"]
        definition = None
        for defs in self.definitions.values():
            for d in defs:
                if ref in (d["jobDefinitionArn"], d["jobDefinitionName"]):
                    definition = d
        if definition is None:
            return 400, {"__type": "ClientException", "message": f"Job definition {ref} not found"}
        props = definition.get("containerProperties", {})
        overrides = body.get("containerOverrides", {})
        env = {e["name"]: e["value"] for e in props.get("environment", [])}
        env.update({e["name"]: e["value"] for e in overrides.get("environment", [])})
        job = Job(
            job_id=str(uuid.uuid4()),
            name=body["jobName"],
            queue=queue,
            definition=definition,
            command=list(overrides.get("command") or props.get("command") or []),
            environment=env,
        )
        self.jobs[job.job_id] = job
        return 200, {"jobArn": job.describe()["jobArn"], "jobName": job.name, "jobId": job.job_id}

    def op_describejobs(self, body: dict[str, Any]) -> tuple[int, Any]:
        ids = body.get("jobs", [])
        if len(ids) > 100:
            return 400, {"__type": "ClientException", "message": "at most 100 jobs per call"}
        return 200, {"jobs": [self.jobs[i].describe() for i in ids if i in self.jobs]}

    def op_listjobs(self, body: dict[str, Any]) -> tuple[int, Any]:
        """As AWS: by queue and status (default RUNNING), or, with filters, any status; a
        JOB_NAME filter value may end in ``*`` (a prefix)."""
        queue = (body.get("jobQueue") or "").rsplit("/", 1)[-1]
        found = [j for j in self.jobs.values() if j.queue == queue]
        filters = body.get("filters") or []
        if not filters:
            status = body.get("jobStatus", "RUNNING")
            found = [j for j in found if j.status == status]
        for condition in filters:
            if condition.get("name") != "JOB_NAME":
                return 400, {"__type": "ClientException", "message": "filter not in double"}
            wanted = condition.get("values", [""])[0]
            if wanted.endswith("*"):
                found = [j for j in found if j.name.startswith(wanted[:-1])]
            else:
                found = [j for j in found if j.name == wanted]
        summaries = []
        for job in sorted(found, key=lambda j: j.created, reverse=True):
            full = job.describe()
            summary = {k: full[k] for k in ("jobArn", "jobId", "jobName", "status", "createdAt")}
            summaries.append(summary)
        return 200, {"jobSummaryList": summaries}

    def op_terminatejob(self, body: dict[str, Any]) -> tuple[int, Any]:
        job = self.jobs.get(body["jobId"])
        if job is None:
            return 400, {"__type": "ClientException", "message": f"Job {body['jobId']} not found"}
        if job.status in ACTIVE_STATES:
            job.reason = body.get("reason", "")
            if job.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(job.proc.pid, signal.SIGTERM)
                threading.Thread(target=self._kill_later, args=(job,), daemon=True).start()
            else:
                self._stop(job, "FAILED", None)
        return 200, {}

    # -- the lifecycle -------------------------------------------------------------------

    def _kill_later(self, job: Job, grace: float = 2.0) -> None:
        assert job.proc is not None
        try:
            job.proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.proc.pid, signal.SIGKILL)

    def _stop(self, job: Job, status: str, exit_code: int | None) -> None:
        job.status, job.exit_code, job.stopped = status, exit_code, time.time()

    def _tick(self) -> None:
        while self.running:
            with self.lock:
                for job in list(self.jobs.values()):
                    self._advance(job)
            time.sleep(0.02)

    def _advance(self, job: Job) -> None:
        age = time.time() - job.created
        if job.status == "SUBMITTED" and age > self.start_delay / 2:
            job.status = "RUNNABLE"
        elif job.status == "RUNNABLE" and age > self.start_delay:
            job.status = "STARTING"
            self._start(job)
        elif job.status in ("STARTING", "RUNNING") and job.proc is not None:
            job.status = "RUNNING"
            code = job.proc.poll()
            if code is not None:
                self._finish(job, code)

    def _start(self, job: Job) -> None:
        # As in a container, every process of the job ends with it: they carry its marker.
        env = {
            **os.environ,
            **CREDENTIALS,
            "AWS_DEFAULT_REGION": REGION,
            **job.environment,
            MARK_VARIABLE: job.job_id,
        }
        job.log_stream = f"{job.definition['jobDefinitionName']}/default/{job.job_id}"
        job.started = time.time()
        job.proc = subprocess.Popen(
            job.command,
            env=env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        stream = job.proc.stdout
        assert stream is not None
        job.reader = threading.Thread(target=self._ship_logs, args=(job, stream), daemon=True)
        job.reader.start()

    def _finish(self, job: Job, code: int) -> None:
        # The container is gone: so is everything that ran in it.
        assert job.proc is not None
        threading.Thread(
            target=kill_task_processes,
            args=(job.proc.pid, job.job_id, job.started or job.created),
            daemon=True,
        ).start()
        if job.reader is not None:
            job.reader.join(5)
        if job.reason:  # terminated
            self._stop(job, "FAILED", code)
        else:
            self._stop(job, "SUCCEEDED" if code == 0 else "FAILED", code)
            if code != 0:
                job.reason = "Essential container in task exited"

    def _ship_logs(self, job: Job, stream: IO[bytes]) -> None:
        """As Batch's awslogs driver does: each line the job writes goes to its log stream
        while it runs."""
        group = (
            job.definition.get("containerProperties", {})
            .get("logConfiguration", {})
            .get("options", {})
            .get("awslogs-group", "/aws/batch/job")
        )
        logs = self.moto.client("logs")
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=group, logStreamName=job.log_stream)
        for raw in iter(stream.readline, b""):
            job.output.append(raw)
            line = raw.decode(errors="replace").rstrip("\n")
            if line:
                event = {"timestamp": int(time.time() * 1000), "message": line}
                logs.put_log_events(
                    logGroupName=group, logStreamName=job.log_stream, logEvents=[event]
                )

    def running_pids(self) -> list[int]:
        with self.lock:
            return [
                j.proc.pid
                for j in self.jobs.values()
                if j.proc is not None and j.proc.poll() is None
            ]

    def stop(self) -> None:
        self.running = False
        for pid in self.running_pids():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.server.shutdown()
