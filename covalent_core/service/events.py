"""The dispatcher's log of what happened, one event per line, ``event=NAME key=value ...``
(logfmt: values with spaces are quoted), at INFO: dispatches received and ended, nodes
started and ended with their stage, cancels requested, confirmed and retried, takeovers.

    grep 'event=node_ended' service.log | grep status=FAILED
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("covalent_core.events")


def _value(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def event(kind: str, /, **fields: Any) -> None:
    """Log one event of ``kind`` (fields that are None are left out)."""
    if logger.isEnabledFor(logging.INFO):
        parts = [f"event={kind}"]
        parts += [f"{key}={_value(value)}" for key, value in fields.items() if value is not None]
        logger.info(" ".join(parts))
