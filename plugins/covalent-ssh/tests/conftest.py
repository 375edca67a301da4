"""A real OpenSSH server on 127.0.0.1 (started here) and a private covalent-core store."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "infra"))

from fixtures import private_store, sshd  # noqa: E402, F401

# The non-root user and its Python with cloudpickle: tests/infra/install.sh makes both.
USER = "covtest"
USER_PYTHON = "/home/covtest/venv/bin/python"
