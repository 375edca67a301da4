"""Ray's side of the cancel-latency comparison: runs in its own venv (``.venv-ray``).

    .venv-ray/bin/python benchmarks/peers/ray_peer.py

Starts Ray locally (``ray.init(num_cpus=2)``), then answers one command per line on stdin with
one JSON line on stdout, so the caller can interleave its rounds with ours:

    cancel DIR    start a task that writes its PID to a file in DIR and sleeps; once it runs,
                  ``ray.cancel(ref, force=True)`` and time until its process is gone (ms)
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

import ray


@ray.remote
def sleeper(path: str) -> None:
    with open(path + ".tmp", "w") as fh:
        fh.write(str(os.getpid()))
    os.rename(path + ".tmp", path)
    time.sleep(600)


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting for its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def cancel(directory: str) -> float:
    path = os.path.join(directory, uuid.uuid4().hex)
    ref = sleeper.remote(path)
    while not os.path.exists(path):
        time.sleep(0.005)
    with open(path) as fh:
        pid = int(fh.read())
    time.sleep(0.05)
    start = time.perf_counter()
    ray.cancel(ref, force=True)
    while not gone(pid):
        time.sleep(0.0002)
    return 1e3 * (time.perf_counter() - start)


def main() -> int:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        try:
            print(json.dumps({"ms": cancel(words[1])}), flush=True)
        except Exception as exc:  # one failed sample is reported, not the end of the run
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
