"""Dask distributed's side of the comparisons: runs in its own venv (``.venv-dask``).

    .venv-dask/bin/python benchmarks/peers/dask_peer.py

Starts ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``, then answers one
command per line on stdin with one JSON line on stdout, so the caller can interleave its
rounds with ours on a warm cluster:

    wide N     N no-op tasks and a reducer: submit to the reducer's result
    chain N    N tasks, each taking the previous one's output
    cold N     a wide graph of N on a new cluster (start, run, close)
"""

from __future__ import annotations

import json
import sys
import time

from distributed import Client, LocalCluster


def noop(i):
    return i


def reduce_all(values):
    return len(values)


def step(x):
    return x + 1


def wide(client: Client, n: int) -> float:
    start = time.perf_counter()
    parts = [client.submit(noop, i, pure=False) for i in range(n)]
    client.submit(reduce_all, parts, pure=False).result()
    return time.perf_counter() - start


def chain(client: Client, n: int) -> float:
    start = time.perf_counter()
    value = client.submit(step, 0, pure=False)
    for _ in range(n - 1):
        value = client.submit(step, value, pure=False)
    value.result()
    return time.perf_counter() - start


def cluster() -> LocalCluster:
    return LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)


def cold(n: int) -> float:
    start = time.perf_counter()
    with cluster() as local, Client(local) as client:
        wide(client, n)
    return time.perf_counter() - start


def main() -> None:
    with cluster() as local, Client(local) as client:
        wide(client, 50)
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            what, n = line.split()
            if what == "wide":
                seconds = wide(client, int(n))
            elif what == "chain":
                seconds = chain(client, int(n))
            else:
                seconds = cold(int(n))
            print(json.dumps({"seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
