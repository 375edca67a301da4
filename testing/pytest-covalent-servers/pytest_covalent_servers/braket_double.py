"""A **test double** of Amazon Braket's quantum-task API, on 127.0.0.1 (moto has no Braket).

It speaks the REST API the SDK and boto3 use: ``CreateQuantumTask`` (POST /quantum-task),
``GetQuantumTask`` (GET /quantum-task/{arn}), ``CancelQuantumTask`` (PUT
/quantum-task/{arn}/cancel) and ``SearchQuantumTasks`` (POST /quantum-tasks). Tasks follow a
clock: CREATED, QUEUED, RUNNING for ``run_seconds``, then COMPLETED; a cancel goes CANCELLING,
then CANCELLED ``cancel_seconds`` later. On completion the program really runs on Braket's
local state-vector simulator and ``results.json`` is written to the moto S3 bucket where
Braket would put it, so result fetching is exercised for real.

Devices: ``SV1`` (online, 34 qubits), ``OFFLINE`` (offline), ``SMALL`` (2 qubits, to reject a
bigger circuit). Access keys starting with ``DENIED`` get AccessDeniedException.
``POST /control {"run_seconds": S}`` changes the clock; ``GET /stats`` counts calls.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from .aws import REGION, JSONHandler, MotoServer
from .ports import free_port

PREFIX = "arn:aws:braket:::device/quantum-simulator/amazon/"
DEVICES = {
    PREFIX + "sv1": {"online": True, "qubits": 34},
    PREFIX + "offline": {"online": False, "qubits": 34},
    PREFIX + "small": {"online": True, "qubits": 2},
}
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")


@dataclass
class QuantumTask:
    arn: str
    device: str
    shots: int
    bucket: str
    directory: str
    source: str
    created: float
    status: str = "CREATED"
    ended: float | None = None
    failure: str | None = None
    cancel_at: float | None = None

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "quantumTaskArn": self.arn,
            "status": self.status,
            "deviceArn": self.device,
            "deviceParameters": "{}",
            "shots": self.shots,
            "outputS3Bucket": self.bucket,
            "outputS3Directory": self.directory,
            "createdAt": self.created,
            # Braket answers the QueueInfo attribute, which the SDK asks for while it waits.
            "queueInfo": {
                "queue": "QUANTUM_TASKS_QUEUE",
                "position": "1" if self.status == "QUEUED" else "None",
                "queuePriority": "Normal",
            },
        }
        if self.ended:
            data["endedAt"] = self.ended
        if self.failure:
            data["failureReason"] = self.failure
        return data


class BraketDouble:
    """The test double (see the module docstring). Not Amazon Braket: labelled as such."""

    def __init__(self, moto: MotoServer) -> None:
        self.moto = moto
        self.tasks: dict[str, QuantumTask] = {}
        self.tokens: dict[str, str] = {}
        self.calls: Counter[str] = Counter()
        self.run_seconds = 0.5
        self.cancel_seconds = 0.3
        self.lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        double = self

        class Handler(JSONHandler):
            def _route(self, method: str) -> None:
                if self.access_key().startswith("DENIED"):
                    denied = "not authorized to perform braket actions"
                    self.reply(403, {"__type": "AccessDeniedException", "message": denied})
                    return
                body = self.body() if method in ("POST", "PUT") else {}
                self.reply(*double.handle(method, self.path.split("?")[0], body))

            def do_GET(self) -> None:
                if self.path == "/stats":
                    self.reply(200, dict(double.calls))
                    return
                self._route("GET")

            def do_POST(self) -> None:
                if self.path == "/control":
                    settings = self.body()
                    double.run_seconds = float(settings.get("run_seconds", double.run_seconds))
                    self.reply(200, {})
                    return
                self._route("POST")

            def do_PUT(self) -> None:
                self._route("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.running = True
        threading.Thread(target=self._tick, daemon=True).start()

    # -- the API -------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        with self.lock:
            if method == "POST" and path == "/quantum-task":
                self.calls["CreateQuantumTask"] += 1
                return self.create(body)
            if method == "POST" and path == "/quantum-tasks":
                self.calls["SearchQuantumTasks"] += 1
                return self.search(body)
            match = re.fullmatch(r"/quantum-task/([^/]+)(/cancel)?", path)
            if match:
                arn = urllib.parse.unquote(match.group(1))
                task = self.tasks.get(arn)
                if method == "PUT" and match.group(2):
                    self.calls["CancelQuantumTask"] += 1
                    return self.cancel(task, arn)
                if method == "GET":
                    self.calls["GetQuantumTask"] += 1
                    if task is None:
                        return 404, {
                            "__type": "ResourceNotFoundException",
                            "message": f"Quantum task {arn} not found",
                        }
                    return 200, task.describe()
            return 400, {"__type": "ValidationException", "message": f"{method} {path}?"}

    def create(self, body: dict[str, Any]) -> tuple[int, Any]:
        token = body.get("clientToken")
        if token in self.tokens:  # idempotent, as Braket: the task this token created
            return 201, {"quantumTaskArn": self.tokens[token]}
        device = DEVICES.get(body["deviceArn"])
        if device is None:
            return 400, {
                "__type": "ValidationException",
                "message": f"Device {body['deviceArn']} does not exist",
            }
        if not device["online"]:
            return 400, {
                "__type": "DeviceOfflineException",
                "message": f"Device {body['deviceArn']} is offline",
            }
        action = json.loads(body["action"])
        source = action.get("source", "")
        qubits = re.search(r"qubit\[(\d+)\]", source)
        if qubits and int(qubits.group(1)) > device["qubits"]:
            return 400, {
                "__type": "ValidationException",
                "message": (
                    f"the circuit uses {qubits.group(1)} qubits; the device has {device['qubits']}"
                ),
            }
        task_id = str(uuid.uuid4())
        arn = f"arn:aws:braket:{REGION}:123456789012:quantum-task/{task_id}"
        directory = f"{body['outputS3KeyPrefix']}/{task_id}"
        bucket, shots = body["outputS3Bucket"], int(body["shots"])
        self.tasks[arn] = QuantumTask(
            arn, body["deviceArn"], shots, bucket, directory, source, time.time()
        )
        if token:
            self.tokens[token] = arn
        self.calls["CreateQuantumTask:new"] += 1
        return 201, {"quantumTaskArn": arn}

    def cancel(self, task: QuantumTask | None, arn: str) -> tuple[int, Any]:
        if task is None:
            return 404, {
                "__type": "ResourceNotFoundException",
                "message": f"Quantum task {arn} not found",
            }
        if task.status in TERMINAL:
            return 409, {
                "__type": "ConflictException",
                "message": f"Quantum task {arn} is already {task.status}",
            }
        if task.status != "CANCELLING":
            task.status = "CANCELLING"
            task.cancel_at = time.time() + self.cancel_seconds
        return 200, {"quantumTaskArn": arn, "cancellationStatus": "CANCELLING"}

    def search(self, body: dict[str, Any]) -> tuple[int, Any]:
        found = list(self.tasks.values())
        for condition in body.get("filters", []):
            if condition["name"] == "quantumTaskArn":
                found = [t for t in found if t.arn in condition["values"]]
            elif condition["name"] == "status":
                found = [t for t in found if t.status in condition["values"]]
        fields = (
            "quantumTaskArn",
            "status",
            "deviceArn",
            "shots",
            "outputS3Bucket",
            "outputS3Directory",
            "createdAt",
            "endedAt",
        )
        summary = [{k: v for k, v in t.describe().items() if k in fields} for t in found]
        return 200, {"quantumTasks": summary}

    # -- the clock -----------------------------------------------------------------------

    def _tick(self) -> None:
        while self.running:
            finished = []
            with self.lock:
                now = time.time()
                for task in self.tasks.values():
                    if task.status == "CANCELLING" and task.cancel_at and now >= task.cancel_at:
                        task.status, task.ended = "CANCELLED", now
                    elif task.status == "CREATED":
                        task.status = "QUEUED"
                    elif task.status == "QUEUED" and now - task.created > 0.1:
                        task.status = "RUNNING"
                    elif task.status == "RUNNING" and now - task.created > self.run_seconds:
                        finished.append(task)
            for task in finished:
                self._complete(task)
            time.sleep(0.02)

    def _complete(self, task: QuantumTask) -> None:
        from braket.default_simulator import StateVectorSimulator
        from braket.ir.openqasm import Program

        try:
            result = StateVectorSimulator().run(Program(source=task.source), shots=task.shots)
            body = result.json()
            self.moto.client("s3").put_object(
                Bucket=task.bucket, Key=f"{task.directory}/results.json", Body=body.encode()
            )
            status, failure = "COMPLETED", None
        except Exception as exc:
            status, failure = "FAILED", f"{type(exc).__name__}: {exc}"
        with self.lock:
            if task.status == "RUNNING":
                task.status, task.failure, task.ended = status, failure, time.time()

    def stop(self) -> None:
        self.running = False
        self.server.shutdown()
