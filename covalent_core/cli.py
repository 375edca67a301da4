"""The ``covalent-core`` command: list, status, result, cancel, executors, service."""

from __future__ import annotations

import datetime as dt
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console

from .config import load_config
from .errors import CovalentCoreError
from .status import Status

if TYPE_CHECKING:
    from rich.table import Table

# Outside a terminal (CI logs, pipes) rich would fold tables to 80 columns.
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


def _time(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]


def _styled(status: Status) -> str:
    return f"[{STATUS_STYLE.get(status, '')}]{status}[/]"


def _fail(exc: Exception | str) -> NoReturn:
    err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
    sys.exit(1)


class _Commands(click.Group):
    """Every command's errors become one ``error:`` line and exit code 1, never a traceback.

    Usage errors keep click's own message and exit code 2. ``COVALENT_CORE_DEBUG=1`` adds the
    traceback of an error that is not the user's (a bug to report).
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except CovalentCoreError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)
        except Exception as exc:
            if os.environ.get("COVALENT_CORE_DEBUG"):
                err_console.print_exception()
            _fail(
                f"{type(exc).__name__}: {exc} (unexpected: please report it, with the output "
                "of the same command run with COVALENT_CORE_DEBUG=1)"
            )


@click.group(cls=_Commands)
@click.version_option(package_name="covalent-core")
def main() -> None:
    """Dispatch, inspect and cancel covalent-core workflows."""
    # A broken config file is reported whatever the command, even when the environment
    # overrides the setting the command reads first.
    load_config()


@main.command("list")
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=20,
    show_default=True,
    help="How many dispatches to show.",
)
def list_cmd(limit: int) -> None:
    """List recent dispatches, newest first."""
    from rich.table import Table

    from .api import list_dispatches

    table = Table("dispatch id", "name", "status", "created", "ended")
    for row in list_dispatches(limit):
        table.add_row(
            row.dispatch_id,
            row.name,
            _styled(Status(row.status)),
            _time(row.created_at),
            _time(row.ended_at),
        )
    console.print(table)


def status_table(result: Any, show_all: bool = False) -> Table:
    """The per-node table of a dispatch: ids, names, statuses, stages, reasons, times."""
    from rich.table import Table

    title = f"{result.name} {result.dispatch_id}: {result.status}"
    if result.redispatched_from:
        title += f" (redispatch of {result.redispatched_from})"
    table = Table(title=title, title_justify="left")
    for column in (
        "id",
        "name",
        "status",
        "stage",
        "cancel reason",
        "executor",
        "started",
        "ended",
    ):
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
        reason = node.cancel_reason or ""
        if node.status is Status.CANCELLED and node.cancel_stage:
            reason += f" (at {node.cancel_stage})"
        table.add_row(
            str(node.node_id),
            node.name,
            _styled(node.status),
            node.stage or "-",
            reason,
            node.executor or "-",
            _time(node.started_at),
            _time(node.ended_at),
            note,
        )
    return table


@main.command()
@click.argument("dispatch_id")
@click.option("--all", "show_all", is_flag=True, help="Include parameter nodes.")
def status(dispatch_id: str, show_all: bool) -> None:
    """Show every node of a dispatch: id, name, status, stage, cancel reason, times."""
    from .api import get_result

    result = get_result(dispatch_id)
    console.print(status_table(result, show_all))
    if result.error:
        console.print(f"[red]error:[/] {result.error}", highlight=False)


@main.command()
@click.argument("dispatch_id")
@click.option("--wait/--no-wait", default=False, help="Wait for the dispatch to finish.")
@click.option("--timeout", type=float, default=None, help="Seconds to wait at most.")
def result(dispatch_id: str, wait: bool, timeout: float | None) -> None:
    """Print a dispatch's result, or its error and the failed nodes' tracebacks."""
    from .api import get_result

    res = get_result(dispatch_id, wait=wait, timeout=timeout)
    console.print(f"{res.name} {res.dispatch_id}: {_styled(res.status)}")
    if res.status is Status.COMPLETED:
        console.print(repr(res.result), highlight=False)
    for node in res.tasks:
        if node.status is Status.FAILED:
            console.print(
                f"[red]node {node.node_id} ({node.name}) failed:[/] {node.error}", highlight=False
            )
            if node.traceback:
                console.print(node.traceback, highlight=False, markup=False)
    if res.status is Status.FAILED:
        sys.exit(1)


@main.command("cancel")
@click.argument("dispatch_id")
@click.option(
    "--task",
    "tasks",
    type=int,
    multiple=True,
    help="Cancel this task id and everything downstream of it (repeatable).",
)
@click.option("--wait/--no-wait", default=False, help="Wait until the tasks are CANCELLED.")
@click.option("--timeout", type=float, default=None, help="Seconds to wait at most.")
def cancel_cmd(dispatch_id: str, tasks: tuple[int, ...], wait: bool, timeout: float | None) -> None:
    """Cancel a whole dispatch, or the given tasks and everything downstream of them."""
    from .api import cancel

    # A running service stores the request and acts on it in one round trip (see ct.cancel).
    report = cancel(dispatch_id, list(tasks) or None, wait=wait, timeout=timeout)
    console.print(str(report), highlight=False, markup=False)


def _replacement(text: str) -> tuple[str, Any]:
    """``name=module:function`` -> (name, the function), importing the module."""
    import importlib

    name, sep, target = text.partition("=")
    module_name, colon, attribute = target.partition(":")
    if not (sep and colon and name and module_name and attribute):
        raise click.BadParameter(
            f"{text!r}: write NAME=MODULE:FUNCTION (the electron's function name, then where "
            "its new version is)",
            param_hint="--replace",
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(
            f"cannot import {module_name!r} ({exc}); run from where it is importable",
            param_hint="--replace",
        ) from None
    try:
        return name, getattr(module, attribute)
    except AttributeError:
        raise click.BadParameter(
            f"module {module_name!r} has no {attribute!r}", param_hint="--replace"
        ) from None


@main.command("redispatch")
@click.argument("dispatch_id")
@click.option(
    "--reuse/--no-reuse",
    default=False,
    help="Take the outputs of the nodes whose work is unchanged and that completed.",
)
@click.option(
    "--replace",
    "replacements",
    multiple=True,
    metavar="NAME=MODULE:FUNCTION",
    help="Use this electron (or function) for the electrons of that name (repeatable).",
)
def redispatch_cmd(dispatch_id: str, reuse: bool, replacements: tuple[str, ...]) -> None:
    """Dispatch a dispatch's workflow again with its inputs; print the new dispatch's id."""
    from .api import redispatch

    sys.path.insert(0, os.getcwd())  # as a script would find the user's modules
    replace = dict(_replacement(text) for text in replacements)
    new_id = redispatch(dispatch_id, replace_electrons=replace, reuse_previous_results=reuse)()
    console.print(new_id, highlight=False)


@main.command()
def executors() -> None:
    """List installed executors (short name, class, package, version) and broken plugins."""
    from rich.table import Table

    from .executors.containment import mechanism
    from .plugins import registry

    reg = registry()
    table = Table("short name", "class", "package", "version", "plugin")
    for name, info in sorted(reg.executors.items()):
        table.add_row(
            name,
            f"{info.cls.__module__}.{info.cls.__qualname__}",
            info.package,
            info.version,
            info.plugin,
        )
    console.print(table)
    console.print(f"local tasks are contained by {mechanism()}", highlight=False)
    for name, why in sorted(reg.failed.items()):
        err_console.print(f"[red]plugin {name!r} failed to load:[/] {why}", highlight=False)


@main.group()
def service() -> None:
    """The local dispatcher service (started on demand; you never need to start it)."""


@service.command("status")
def service_status() -> None:
    """Say whether the dispatcher service for the current store is running."""
    from . import config
    from .service.client import request

    try:
        reply = request({"op": "ping"}, start=False, timeout=5)
    except CovalentCoreError:
        console.print(f"not running (store {config.db_url()})")
        return
    console.print(f"running: pid {reply['pid']} (store {config.db_url()})")


@service.command("stop")
def service_stop() -> None:
    """Ask the dispatcher service to exit. Running jobs keep running: the next service (any
    client starts it) re-attaches to them."""
    from .service.client import request

    try:
        request({"op": "shutdown"}, start=False, timeout=5)
    except CovalentCoreError:
        console.print("not running")
        return
    console.print("stopping")


if __name__ == "__main__":
    main()
