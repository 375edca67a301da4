"""Triggers and registered dispatches, observed the same way on Covalent and on covalent-core.

``observe(ct, LocalDispatcher, TimeTrigger, log_dir)`` runs the programs with the given
flavour's names and returns what a user sees. ``python trigger_programs.py`` (in Covalent
0.240's venv) runs them on real Covalent (its server started here, triggers on) and writes
``golden/triggers.json``; ``test_triggers_match_covalent.py`` runs them on ours and compares.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).with_name("golden") / "triggers.json"


def observe(ct: Any, local_dispatcher: Any, time_trigger: Any, log_dir: Path) -> dict[str, Any]:
    """What the programs show: statuses, values, how the runs came about."""
    log = log_dir / "runs.log"

    @ct.electron
    def mark(path, x):
        with open(path, "a") as fh:
            fh.write(f"{x}\n")
        return x

    @ct.lattice(triggers=time_trigger(time_gap=2))
    def timed(path, x):
        return mark(path, x)

    @ct.lattice
    def plain(x):
        return mark(str(log_dir / "plain.log"), x)

    facts: dict[str, Any] = {}
    dispatch_id = ct.dispatch(timed)(str(log), 7)
    facts["a lattice with a trigger: status once dispatched"] = str(
        ct.get_result(dispatch_id, wait=False).status
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_lines(log)) < 2:
        time.sleep(0.2)
    ct.stop_triggers(dispatch_id)
    result = ct.get_result(dispatch_id, wait=True)
    facts["the first firing ran the dispatch itself: status, value"] = [
        str(result.status),
        result.result,
    ]
    facts["later firings ran it again"] = len(_lines(log)) >= 2

    registered = ct.dispatch(plain, disable_run=True)(8)
    time.sleep(3)
    facts["disable_run: status 3 s later"] = str(ct.get_result(registered, wait=False).status)
    facts["start returns the id"] = local_dispatcher.start(registered) == registered
    result = ct.get_result(registered, wait=True)
    facts["started: status, value"] = [str(result.status), result.result]
    return facts


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from reference import CovalentServer

    server = CovalentServer(Path(sys.executable), Path(tempfile.mkdtemp(prefix="cov-home-")),
                            triggers=True)  # fmt: skip
    os.environ.update(server.env)  # this client finds that server through that home
    with server, tempfile.TemporaryDirectory() as logs:
        import covalent  # once started: the port is read from its config as it is imported
        from covalent._dispatcher_plugins.local import LocalDispatcher
        from covalent.triggers import TimeTrigger

        facts = observe(covalent, LocalDispatcher, TimeTrigger, Path(logs))
    GOLDEN.write_text(json.dumps(facts, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
