"""Asking the machine itself about a task (the SSH server runs on this machine)."""

from __future__ import annotations

import json
from pathlib import Path


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of a process, or None."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[19])


def job_alive(handle: str) -> bool:
    """Is the task's monitor (its process group leader) still running? A zombie is dead."""
    data = json.loads(handle)
    info = proc_stat(data["pid"])
    return info is not None and info[1] == data["start_ticks"] and info[0] not in ("Z", "X")


def listing(directory: Path) -> list[str]:
    """What is left in a remote working directory."""
    return sorted(str(p) for p in directory.iterdir()) if directory.exists() else []
