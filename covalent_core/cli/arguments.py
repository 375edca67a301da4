"""What the commands about a dispatch share: its id argument and their exit codes."""

from __future__ import annotations

from typing import Any

import click

from ..status import Status

EXIT_CODES = {Status.COMPLETED: 0, Status.FAILED: 1, Status.CANCELLED: 3}
EXIT_UNFINISHED = 4
"""Exit code of a command about a dispatch that is still running, or that timed out."""


def exit_code(status: Status) -> int:
    """The exit code a dispatch's status gives the commands that report on it."""
    return EXIT_CODES.get(status, EXIT_UNFINISHED)


def _full_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A dispatch id argument: the full id of a unique prefix (at least 6 characters)."""
    from ..api import complete_dispatch_id

    return complete_dispatch_id(value)


def dispatch_id_argument(function: Any) -> Any:
    """The DISPATCH_ID argument every command about a dispatch takes."""
    return click.argument("dispatch_id", callback=_full_id)(function)
