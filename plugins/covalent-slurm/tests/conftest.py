"""A real single-node Slurm cluster and an OpenSSH server on 127.0.0.1, started here."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "infra"))

from fixtures import cluster, private_store, sshd  # noqa: E402, F401
