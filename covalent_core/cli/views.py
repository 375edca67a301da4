"""What the ``covalent-core`` command prints: the consoles, status colours, JSON documents,
and the tables of ``status`` and ``watch``."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from ..deadlines import time_left
from ..errors import store_full_message
from ..status import Status

if TYPE_CHECKING:
    from rich.table import Table

# Outside a terminal (CI logs, pipes) rich would fold tables to 80 columns (or to an
# exported COLUMNS, which test runners and CI set): what a script parses is 160 wide.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

STATUS_STYLE = {
    Status.COMPLETED: "green",
    Status.FAILED: "red",
    Status.CANCELLED: "yellow",
    Status.CANCELLING: "bold yellow",
    Status.RUNNING: "cyan",
    Status.NEW_OBJECT: "dim",
}


FOLLOW_INTERVAL = 0.5
"""Seconds between two looks at a dispatch that ``logs -f`` and ``watch`` follow."""


def print_json(document: Any) -> None:
    """Print one JSON document on a line."""
    click.echo(json.dumps(document, default=str))


def node_json(node: Any) -> dict[str, Any]:
    """A node as the ``--json`` outputs give it."""
    return {
        "node_id": node.node_id,
        "name": node.name,
        "kind": node.kind,
        "status": str(node.status),
        "stage": node.stage,
        "cancel_reason": node.cancel_reason,
        "cancel_stage": node.cancel_stage,
        "executor": node.executor,
        "started_at": node.started_at,
        "ended_at": node.ended_at,
        "error": node.error,
        "sub_dispatch_id": node.sub_dispatch_id,
        "reused_from": node.reused_from,
    }


def print_failed(node: Any) -> None:
    """Say that a node failed, and why."""
    error = escape(node.error or "")
    console.print(
        f"[red]node {node.node_id} ({escape(node.name)}) failed:[/] {error}", highlight=False
    )


def when(ts: float | None) -> str:
    """A stored time as a clock time with milliseconds (or -)."""
    return "-" if ts is None else dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]


def deadline_note(result: Any) -> str:
    """``, deadline 14:00:00 (in 1h 59m)`` while it runs; empty without a deadline."""
    if result.deadline_at is None:
        return ""
    left = "" if result.is_finished else f" ({time_left(result.deadline_at, time.time())})"
    return f", deadline {dated(result.deadline_at)}{left}"


def dated(ts: float | None) -> str:
    """A stored time with its date when that is not today (or -)."""
    if ts is None:
        return "-"
    moment = dt.datetime.fromtimestamp(ts)
    if moment.date() == dt.date.today():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def styled(status: Status) -> str:
    """A status in its colour (rich markup)."""
    return f"[{STATUS_STYLE.get(status, '')}]{status}[/]"


NARROW = 120
"""Below this many columns, ``status`` leaves out the executor and the times, rather than cut
the statuses (``sta…``)."""


def status_table(result: Any, show_all: bool = False) -> Table:
    """The per-node table of a dispatch: ids, names, statuses, stages, reasons, times."""
    from rich.table import Table

    title = f"{escape(result.name)} {result.dispatch_id}: {result.status}"
    if result.redispatched_from:
        title += f" (redispatch of {result.redispatched_from})"
    title += deadline_note(result)
    wide = console.width >= NARROW
    table = Table(title=title, title_justify="left")
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold", min_width=8)
    table.add_column("status", no_wrap=True, min_width=10)
    table.add_column("stage", no_wrap=True, min_width=9)
    table.add_column("cancel reason", overflow="fold")
    if wide:
        for column in ("executor", "started", "ended"):
            table.add_column(column, no_wrap=True)
    table.add_column("note", overflow="fold")
    for node in result.nodes if show_all else result.tasks:
        note = ""
        if node.status is Status.FAILED and node.error:
            note = node.error.splitlines()[0][:80]
        elif node.error:
            note = node.error.splitlines()[-1][:80]
        if node.reused_from:
            note = (note + " " if note else "") + f"reused from {node.reused_from}"
        if node.sub_dispatch_id:
            note = (note + " " if note else "") + f"sub-dispatch {node.sub_dispatch_id}"
        if node.note:
            note = (note + " " if note else "") + node.note
        reason = (
            node.cancel_summary if node.status is Status.CANCELLED else node.cancel_reason or ""
        )
        times = [node.executor or "-", when(node.started_at), when(node.ended_at)] if wide else []
        table.add_row(
            str(node.node_id),
            escape(node.name),
            styled(node.status),
            node.stage or "-",
            reason,
            *times,
            escape(note),
        )
    return table


def pick_task(result: Any, task: str) -> Any:
    """The node ``task`` names: an id, or the name of exactly one task."""
    by_id = {n.node_id: n for n in result.nodes}
    if task.lstrip("-").isdigit() and int(task) in by_id:
        return by_id[int(task)]
    named = [n for n in result.tasks if n.name == task]
    if len(named) == 1:
        return named[0]
    listed = ", ".join(f"{n.node_id} {n.name}" for n in result.tasks[:20])
    more = f" (and {len(result.tasks) - 20} more)" if len(result.tasks) > 20 else ""
    if named:
        raise click.BadParameter(
            f"{len(named)} tasks are named {task!r} (ids "
            f"{', '.join(str(n.node_id) for n in named)}): give the id",
            param_hint="--task",
        )
    raise click.BadParameter(
        f"dispatch {result.dispatch_id} has no task {task!r}; its tasks: {listed}{more}",
        param_hint="--task",
    )


def watch_view(result: Any, full: str | None = None) -> Any:
    """What ``watch`` shows: the dispatch's status, a bar of tasks done, the running ones;
    and, while the store cannot be written (``full``: where it is), why nothing moves."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    tasks = result.tasks
    done = sum(1 for n in tasks if n.status.is_terminal)
    counts = {s: sum(1 for n in tasks if n.status is s) for s in Status}
    summary = ", ".join(f"{count} {s}" for s, count in counts.items() if count)
    header = f"{escape(result.name)} {result.dispatch_id}: {styled(result.status)}"
    header += deadline_note(result)
    bar = ProgressBar(total=max(1, len(tasks)), completed=done, width=30)
    table = Table("id", "name", "status", "for", "reason / last output", title_justify="left")
    for column in table.columns:  # id, status and time whole; the name, then the note give way
        column.no_wrap = True
    table.columns[1].overflow = table.columns[4].overflow = "ellipsis"
    table.columns[1].max_width = 24
    table.columns[4].ratio = 1
    now = time.time()
    for node in tasks:
        if node.status not in (Status.RUNNING, Status.CANCELLING):
            continue
        elapsed = f"{now - node.started_at:.0f} s" if node.started_at else "-"
        if node.status is Status.CANCELLING:
            note = f"cancelling: {node.cancel_reason or 'requested'}"
        else:
            lines = (node.stdout or "").rstrip("\n").splitlines()
            note = lines[-1] if lines else ""
        table.add_row(
            str(node.node_id), escape(node.name), styled(node.status), elapsed, escape(note)
        )
    parts: list[Any] = [header, bar, f"{done}/{len(tasks)} tasks done ({summary})", table]
    if full is not None:
        parts.insert(1, f"[bold red]{escape(store_full_message(full))}[/]")
    return Group(*parts)


def json_option(function: Any) -> Any:
    """``--json``: print JSON (the shape each command's help names) instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON, not a table.")(
        function
    )
