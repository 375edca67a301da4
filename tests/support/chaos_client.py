"""One client of the chaos test: dispatches small workflows, cancels some of them at random,
and writes one JSON line per ``dispatch()`` call to report what it got back.

Run as ``python chaos_client.py NAME LOG_DIR REPORT COUNT SEED``. Half of the calls give an
idempotency key (``NAME-i``); every call's workflow is named after the client, so that the
dispatches each client stored can be counted in the store. Each task notes its start in
``LOG_DIR/<dispatch>/<task>.starts`` (the :func:`helpers.logged` task).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

import helpers

import covalent_core as ct
from covalent_core.errors import CovalentCoreError


def workflow(name: str) -> ct.Lattice:
    logged = ct.electron(helpers.logged)

    @ct.electron
    def join(values: list[int]) -> int:
        return sum(values)

    def flow(log_dir: str, lengths: list[float]) -> int:
        parts = [logged(log_dir, f"part{i}", length, i) for i, length in enumerate(lengths)]
        return join(parts)

    flow.__name__ = flow.__qualname__ = name
    return ct.lattice(flow)


def main() -> int:
    name, log_root, report, count, seed = sys.argv[1:6]
    rng = random.Random(int(seed))
    lattice = workflow(name)
    with open(report, "a") as out:
        for index in range(int(count)):
            lengths = [round(rng.uniform(0.02, 0.3), 2) for _ in range(rng.randint(1, 3))]
            log_dir = os.path.join(log_root, f"{name}-{index}")
            os.makedirs(log_dir)
            key = f"{name}-{index}" if index % 2 == 0 else None
            line: dict[str, object] = {"index": index, "key": key, "lengths": lengths}
            try:
                dispatch_id = ct.dispatch(lattice, key=key)(log_dir, lengths)
            except CovalentCoreError as exc:
                line["error"] = f"{type(exc).__name__}: {exc}"
            else:
                line["id"] = dispatch_id
                if rng.random() < 0.25:
                    time.sleep(rng.uniform(0.0, 0.4))
                    try:
                        ct.cancel(dispatch_id)
                        line["cancelled"] = True
                    except CovalentCoreError as exc:
                        # It may or may not have been stored before the error.
                        line["cancel_error"] = f"{type(exc).__name__}: {exc}"
            out.write(json.dumps(line) + "\n")
            out.flush()
            time.sleep(rng.uniform(0.0, 0.2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
