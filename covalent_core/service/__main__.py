"""``python -m covalent_core.service``: run the dispatcher service in the foreground."""

from __future__ import annotations

import sys

from ..local import prespawn

prespawn.start()  # a warm worker starts while this process imports and opens its store

from .server import main  # noqa: E402

sys.exit(main())
