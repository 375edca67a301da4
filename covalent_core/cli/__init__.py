"""The ``covalent-core`` command: list, status, result, logs, watch, cancel, redispatch,
executors, service, triggers."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from typing import Any, NoReturn

import click
from rich.markup import escape

from ..config import check as check_config
from ..errors import (
    AmbiguousDispatchIdError,
    CovalentCoreError,
    DispatchIdTooShortError,
    DispatchNotFoundError,
    MissingExtraError,
    TaskNotFoundError,
    TriggerNotFoundError,
)
from ..status import Status
from .arguments import EXIT_UNFINISHED, dispatch_id_argument, exit_code
from .follow import logs, watch
from .service import service
from .triggers import triggers
from .views import (
    console,
    dated,
    err_console,
    json_option,
    node_json,
    print_failed,
    print_json,
    status_table,
    styled,
)

LIST_WIDE = 110
"""Columns from which ``list`` shows whole ids and end times."""


def _fail(exc: Exception | str, code: int = 1) -> NoReturn:
    err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    sys.exit(code)


EXIT_MISTAKE = 2
"""Exit code of a mistake in what was asked (as click's for wrong usage)."""
USER_MISTAKES = (
    DispatchNotFoundError,
    TaskNotFoundError,
    AmbiguousDispatchIdError,
    DispatchIdTooShortError,
    TriggerNotFoundError,
    MissingExtraError,
)
"""Errors that say the command named something that is not there (or not installed)."""


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
        except USER_MISTAKES as exc:
            _fail(exc, EXIT_MISTAKE)
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


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="covalent-core")
def main() -> None:
    """Dispatch, inspect and cancel covalent-core workflows.

    A dispatch id may be shortened to any unique prefix of at least 6 characters.

    \b
    Exit codes of the commands about a dispatch (status, result, logs -f, watch):
      0  COMPLETED
      1  FAILED (and any other error)
      2  wrong usage: an unknown id or task, a prefix too short, a missing extra
      3  CANCELLED
      4  still running, or waiting timed out
    """
    # A broken config file is reported whatever the command, even when the environment
    # overrides the setting the command reads first.
    check_config()
    from ..plugins import check_executor_sections

    check_executor_sections()


SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _since(text: str | None) -> float | None:
    """``--since``: a duration back from now (``90s``, ``30m``, ``2h``, ``7d``) or a date
    (``2026-11-27``, ``2026-11-27T08:00``); seconds since the epoch."""
    if text is None:
        return None
    unit = SINCE_UNITS.get(text[-1:])
    if unit is not None and text[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(text[:-1]) * unit
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: give a duration (90s, 30m, 2h, 7d) or a date (2026-11-27T08:00)",
            param_hint="--since",
        ) from None


@main.command("list")
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=20,
    show_default=True,
    help="How many dispatches to show.",
)
@click.option(
    "--status",
    "statuses",
    type=click.Choice([str(s) for s in Status], case_sensitive=False),
    multiple=True,
    help="Only dispatches with this status (repeatable).",
)
@click.option("--name", default=None, help="Only dispatches whose name contains this.")
@click.option("--since", default=None, help="Only dispatches created since: 2h, 7d, a date.")
@json_option
def list_cmd(
    limit: int, statuses: tuple[str, ...], name: str | None, since: str | None, as_json: bool
) -> None:
    """List recent dispatches, newest first.

    --json prints an array of {dispatch_id, name, status, created_at, ended_at,
    redispatched_from}.
    """
    from rich.table import Table

    from ..api import list_dispatches

    rows = list_dispatches(
        limit, status=[s.upper() for s in statuses] or None, name=name, since=_since(since)
    )
    if as_json:
        fields = ("dispatch_id", "name", "status", "created_at", "ended_at", "redispatched_from")
        print_json([{f: getattr(row, f) for f in fields} for row in rows])
        return
    wide = console.width >= LIST_WIDE
    # Narrow: the id's first 8 characters (a prefix every command takes), name and status
    # whole, the creation time with its date; the end time is left out.
    headers = ["dispatch id", "name", "status", "created"] + (["ended"] if wide else [])
    table = Table(*headers)
    for column in table.columns:
        column.no_wrap = True
    table.columns[1].overflow = "ellipsis"  # the name gives way first
    for row in rows:
        cells = [
            row.dispatch_id if wide else row.dispatch_id[:8],
            escape(row.name),
            styled(Status(row.status)),
            dated(row.created_at),
        ]
        table.add_row(*cells, *([dated(row.ended_at)] if wide else []))
    console.print(table)


@main.command()
@dispatch_id_argument
@click.option("--all", "show_all", is_flag=True, help="Include parameter nodes.")
@json_option
def status(dispatch_id: str, show_all: bool, as_json: bool) -> None:
    """Show every node of a dispatch: id, name, status, stage, cancel reason, times.

    Exits with the dispatch's code (0 COMPLETED, 1 FAILED, 3 CANCELLED, 4 running). --json
    prints {dispatch_id, name, status, error, redispatched_from, deadline_at, nodes:
    [{node_id, name, kind, status, stage, cancel_reason, cancel_stage, executor, started_at,
    ended_at, error, sub_dispatch_id, reused_from}]}.
    """
    from ..api import get_result

    result = get_result(dispatch_id, intermediate_outputs=False)
    if as_json:
        print_json(
            {
                "dispatch_id": result.dispatch_id,
                "name": result.name,
                "status": str(result.status),
                "error": result.error,
                "redispatched_from": result.redispatched_from,
                "deadline_at": result.deadline_at,
                "nodes": [node_json(n) for n in (result.nodes if show_all else result.tasks)],
            }
        )
    else:
        console.print(status_table(result, show_all))
        if result.error:
            console.print(f"[red]error:[/] {escape(result.error)}", highlight=False)
    sys.exit(exit_code(result.status))


@main.command()
@dispatch_id_argument
@click.option("--wait/--no-wait", default=False, help="Wait for the dispatch to finish.")
@click.option("--timeout", type=float, default=None, help="Seconds to wait at most.")
@json_option
def result(dispatch_id: str, wait: bool, timeout: float | None, as_json: bool) -> None:
    """Print a dispatch's result, or its error and the failed nodes' tracebacks.

    Exits with the dispatch's code (0 COMPLETED, 1 FAILED, 3 CANCELLED, 4 running or the
    wait timed out). A cancelled dispatch lists its cancelled tasks and why. --json prints
    {dispatch_id, name, status, result (when JSON can hold it), result_repr, error, failed:
    [{node_id, name, error, traceback}], cancelled: [{node_id, name, reason, stage}]}.
    """
    from ..api import get_result
    from ..errors import DispatchTimeoutError

    try:
        res = get_result(dispatch_id, wait=wait, timeout=timeout)
    except DispatchTimeoutError as exc:
        err_console.print(f"[yellow]{escape(str(exc))}[/]", highlight=False)
        sys.exit(EXIT_UNFINISHED)
    failed = [n for n in res.tasks if n.status is Status.FAILED]
    if as_json:
        document: dict[str, Any] = {
            "dispatch_id": res.dispatch_id,
            "name": res.name,
            "status": str(res.status),
            "error": res.error,
            "failed": [
                {"node_id": n.node_id, "name": n.name, "error": n.error, "traceback": n.traceback}
                for n in failed
            ],
            "cancelled": [
                {"node_id": n.node_id, "name": n.name, "reason": n.cancel_reason,
                 "stage": n.cancel_stage}
                for n in res.tasks
                if n.status is Status.CANCELLED
            ],
        }  # fmt: skip
        if res.status is Status.COMPLETED:
            value = res.result
            document["result_repr"] = repr(value)
            try:
                json.dumps(value)
                document["result"] = value
            except (TypeError, ValueError):
                pass
        print_json(document)
        sys.exit(exit_code(res.status))
    console.print(f"{escape(res.name)} {res.dispatch_id}: {styled(res.status)}")
    if res.status is Status.COMPLETED:
        console.print(repr(res.result), highlight=False, markup=False)
    for node in failed:
        print_failed(node)
        if node.traceback:
            console.print(node.traceback, highlight=False, markup=False)
    if res.status is Status.CANCELLED:
        # The tasks a cancel stopped or kept from running: which, and why (a whole-dispatch
        # cancel says it once).
        for node in [n for n in res.tasks if n.status is Status.CANCELLED][:CANCELLED_SHOWN]:
            why = escape(node.cancel_summary or "requested")
            console.print(
                f"  {node.node_id} {escape(node.name)}: cancelled, {why}", highlight=False
            )
    sys.exit(exit_code(res.status))


CANCELLED_SHOWN = 20
"""Cancelled tasks ``result`` lists at most (``status`` lists them all)."""


@main.command("cancel")
@dispatch_id_argument
@click.option(
    "--task",
    "tasks",
    type=int,
    multiple=True,
    help="Cancel this task id and everything downstream of it (repeatable).",
)
@click.option("--wait/--no-wait", default=False, help="Wait until the tasks are CANCELLED.")
@click.option("--timeout", type=float, default=None, help="Seconds to wait at most.")
@json_option
def cancel_cmd(
    dispatch_id: str, tasks: tuple[int, ...], wait: bool, timeout: float | None, as_json: bool
) -> None:
    """Cancel a whole dispatch, or the given tasks and everything downstream of them.

    --json prints {dispatch_id, cancelled, requested, downstream, already_finished: {node id:
    status}, sub_dispatches, dispatch_status}.
    """
    from ..api import cancel

    # A running service stores the request and acts on it in one round trip (see ct.cancel).
    report = cancel(dispatch_id, list(tasks) or None, wait=wait, timeout=timeout)
    if as_json:
        print_json(
            {
                "dispatch_id": report.dispatch_id,
                "cancelled": report.cancelled,
                "requested": report.requested,
                "downstream": report.downstream,
                "already_finished": {str(k): str(v) for k, v in report.already_finished.items()},
                "sub_dispatches": report.sub_dispatches,
                "dispatch_status": str(report.dispatch_status),
            }
        )
        return
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
@dispatch_id_argument
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
@json_option
def redispatch_cmd(
    dispatch_id: str, reuse: bool, replacements: tuple[str, ...], as_json: bool
) -> None:
    """Dispatch a dispatch's workflow again with its inputs; print the new dispatch's id.
    --json prints {dispatch_id, redispatched_from}."""
    from ..redispatching import redispatch

    sys.path.insert(0, os.getcwd())  # as a script would find the user's modules
    replace = dict(_replacement(text) for text in replacements)
    new_id = redispatch(dispatch_id, replace_electrons=replace, reuse_previous_results=reuse)()
    if as_json:
        print_json({"dispatch_id": new_id, "redispatched_from": dispatch_id})
        return
    console.print(new_id, highlight=False)


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to serve on; anything but loopback is reachable by others.",
)
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to serve on; 0 takes any free one.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@json_option
def ui(host: str, port: int, open_browser: bool, as_json: bool) -> None:
    """Serve the web UI: dispatches, live graphs, logs, cancel and redispatch.

    Prints a URL with a random access token (needed by every request); runs until Ctrl-C.
    Needs the ui extra: pip install 'covalent-core[ui]'. --json prints {url} (or {warning})
    lines.
    """
    try:
        import starlette  # noqa: F401 - the ui extra: said now, not once serving
        import uvicorn  # noqa: F401

        from ..ui.server import serve
    except ImportError as exc:
        raise MissingExtraError(
            f"the UI needs the ui extra ({exc.name} is missing): pip install 'covalent-core[ui]'"
        ) from None
    try:
        serve(
            host,
            port,
            open_browser=open_browser,
            announce=_announce_json if as_json else click.echo,
        )
    except OSError as exc:
        raise CovalentCoreError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None


def _announce_json(line: str) -> None:
    """What ``ui`` says, as JSON: the URL, or a warning."""
    url = line.removeprefix("covalent-core UI: ")
    print_json({"url": url} if url != line else {"warning": line})
    sys.stdout.flush()


@main.command()
@json_option
def executors(as_json: bool) -> None:
    """List installed executors (short name, class, package, version) and broken plugins.

    --json prints {executors: [{short_name, class, package, version, plugin}], failed:
    {plugin: why}, containment}.
    """
    from rich.table import Table

    from ..plugins import registry
    from ..sdk.containment import mechanism

    reg = registry()
    if as_json:
        print_json(
            {
                "executors": [
                    {
                        "short_name": name,
                        "class": f"{info.cls.__module__}.{info.cls.__qualname__}",
                        "package": info.package,
                        "version": info.version,
                        "plugin": info.plugin,
                    }
                    for name, info in sorted(reg.executors.items())
                ],
                "failed": dict(sorted(reg.failed.items())),
                "containment": mechanism(),
            }
        )
        return
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
        err_console.print(
            f"[red]plugin {escape(repr(name))} failed to load:[/] {escape(str(why))}",
            highlight=False,
        )


main.add_command(service)
main.add_command(triggers)
main.add_command(logs)
main.add_command(watch)

if __name__ == "__main__":
    main()
