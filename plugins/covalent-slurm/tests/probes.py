"""Asking the Slurm cluster itself about jobs."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_covalent_servers.slurm import SlurmCluster


def job_alive(cluster: SlurmCluster, handle: str) -> bool:
    """Is the job still queued, running or completing (its processes not yet dead)?"""
    job_id = json.loads(handle)["job_id"]
    out = cluster.run(["squeue", "--noheader", "--format=%T", f"--jobs={job_id}"])
    return bool(out.stdout.strip())


def queued_jobs(cluster: SlurmCluster) -> list[str]:
    """Every job still in the queue."""
    out = cluster.run(["squeue", "--noheader", "--format=%i %j %T"]).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def listing(directory: Path) -> list[str]:
    return sorted(str(p) for p in directory.iterdir()) if directory.exists() else []
