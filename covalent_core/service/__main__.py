"""``python -m covalent_core.service``: run the dispatcher service in the foreground."""

from __future__ import annotations

import sys

from .server import main

sys.exit(main())
