"""What the executor runs in a killable local process: ``python -m covalent_braket.remote``.

    MODE PAYLOAD OUTCOME [ARNS_FILE] [DEVICE SHOTS]

``hybrid``: run the electron; every quantum task it creates (``AwsQuantumTask.create``, which
``AwsDevice.run`` uses too) is appended to ARNS_FILE as soon as it exists, so that a cancel
can cancel it. ``local``: run the electron, then its program on the local simulator DEVICE
with SHOTS; the output becomes the result summary.
"""

from __future__ import annotations

import os
import pickle
import sys

import cloudpickle

from covalent_core.sdk import runner


def record_tasks(path: str) -> None:
    from braket.aws.aws_quantum_task import AwsQuantumTask

    original = AwsQuantumTask.create

    def create(*args: object, **kwargs: object) -> AwsQuantumTask:
        task = original(*args, **kwargs)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as fh:
            fh.write(task.id + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return task

    AwsQuantumTask.create = staticmethod(create)  # type: ignore[method-assign]


def run_locally(outcome: bytes, device: str, shots: int) -> bytes:
    from braket.devices import LocalSimulator

    from .programs import as_program, summary

    data = pickle.loads(outcome)
    if not data["ok"]:
        return outcome
    try:
        program = as_program(cloudpickle.loads(data["output"]))
        name = device.split(":", 1)[1] if ":" in device else "braket_sv"
        result = LocalSimulator(name).run(program, shots=shots).result()
        data["output"] = cloudpickle.dumps(summary(result, None, device))
    except Exception as exc:
        import traceback

        data = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    return pickle.dumps(data)


def main(argv: list[str]) -> int:
    mode, payload_file, outcome_file = argv[:3]
    target = os.path.abspath(outcome_file)
    if mode == "hybrid":
        record_tasks(os.path.abspath(argv[3]))
    with open(payload_file, "rb") as fh:
        outcome = runner.execute(fh.read())
    if mode == "local":
        outcome = run_locally(outcome, argv[4], int(argv[5]))
    with open(
        os.open(target + ".partial", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb"
    ) as fh:
        fh.write(outcome)
    os.replace(target + ".partial", target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
