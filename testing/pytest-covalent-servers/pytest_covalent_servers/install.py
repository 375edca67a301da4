"""``covalent-servers-install``: install the Debian packages the test servers need (as root)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("install.sh")


def main() -> int:
    """Run ``install.sh`` (idempotent: it installs only what is missing)."""
    return subprocess.run(["bash", str(SCRIPT)], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
