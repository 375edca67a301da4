"""``covalent-core triggers``: the stored triggers, and stopping them."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from .views import console, json_option, print_json, when

FIELDS = ("trigger_id", "dispatch_id", "kind", "description", "host", "armed", "fired",
          "created_at", "last_fired_at", "stopped_at", "error")  # fmt: skip


@click.group(invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="Include stopped triggers.")
@click.option("--dispatch", "dispatch_id", default=None, help="Only this dispatch's triggers.")
@json_option
@click.pass_context
def triggers(ctx: click.Context, show_all: bool, dispatch_id: str | None, as_json: bool) -> None:
    """List the armed triggers (with --all, the stopped ones too): id, dispatch, kind, what
    it watches, how often it fired. The service of their host runs them; this starts it if
    none runs. --json prints an array of {trigger_id, dispatch_id, kind, description, host,
    armed, fired, created_at, last_fired_at, stopped_at, error}."""
    if ctx.invoked_subcommand is not None:
        return
    from ..api import complete_dispatch_id
    from ..service.client import revive
    from ..store import open_store
    from ..store import triggers as rows

    ids = None if dispatch_id is None else [complete_dispatch_id(dispatch_id)]
    with open_store().read() as conn:
        found = rows.list_triggers(conn, dispatch_ids=ids, armed_only=not show_all)
    revive()  # armed triggers whose service is gone are armed again
    if as_json:
        print_json([{f: getattr(row, f) for f in FIELDS} for row in found])
        return
    if not found:
        console.print("no triggers" if show_all else "no armed triggers (--all: stopped ones)")
        return
    console.print(_table(found))


def _table(found: list[Any]) -> Any:
    from rich.table import Table

    table = Table("trigger id", "dispatch id", "kind", "watches", "state", "fired", "last fired")
    for column in table.columns[:2]:
        column.no_wrap = True
        column.min_width = 36
    for row in found:
        state = "[green]armed[/]" if row.armed else "stopped"
        if row.error:
            state = f"[red]failed[/]: {escape(row.error)}"
        table.add_row(row.trigger_id, row.dispatch_id, row.kind, escape(row.description), state,
                      str(row.fired), when(row.last_fired_at))  # fmt: skip
    return table


@triggers.command("stop")
@click.argument("trigger_ids", nargs=-1)
@click.option("--dispatch", "dispatch_ids", multiple=True, help="Every trigger of this dispatch.")
def stop(trigger_ids: tuple[str, ...], dispatch_ids: tuple[str, ...]) -> None:
    """Disarm triggers, by id or (--dispatch) all of a dispatch (as ct.stop_triggers). The
    runs they made go on; cancel those with `covalent-core cancel`."""
    from ..api import complete_dispatch_id
    from ..triggers import stop_trigger_ids, stop_triggers

    if not trigger_ids and not dispatch_ids:
        raise click.UsageError("name the triggers to stop, or --dispatch DISPATCH_ID")
    stopped = stop_trigger_ids(trigger_ids) if trigger_ids else []
    if dispatch_ids:
        stopped += stop_triggers([complete_dispatch_id(d) for d in dispatch_ids])
    already = [t for t in trigger_ids if t not in stopped]
    for trigger_id in stopped:
        console.print(f"stopped trigger {trigger_id}", highlight=False)
    for trigger_id in already:
        console.print(f"trigger {trigger_id} was already stopped", highlight=False)
    if dispatch_ids and not stopped:
        console.print("no armed trigger of those dispatches", highlight=False)
