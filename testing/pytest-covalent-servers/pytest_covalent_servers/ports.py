"""Where the servers live: free ports on the loopback interface, and their directories."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

# The system temporary directory: the servers' state never goes into the private TMPDIR that
# a test gives the code under test (which other users, such as the SSH test user or munge,
# cannot enter). covalent-core's isolated_store records the one it replaced.
SYSTEM_TMP = os.environ.get("COVALENT_CORE_SYSTEM_TMPDIR") or tempfile.gettempdir()


def server_dir(prefix: str) -> Path:
    """A new directory for one server's configuration, keys and logs (readable by others)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=SYSTEM_TMP))
    path.chmod(0o755)
    return path


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
