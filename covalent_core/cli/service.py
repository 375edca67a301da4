"""``covalent-core service``: the local dispatcher service's status, log and stop."""

from __future__ import annotations

import os
import time

import click

from ..errors import CovalentCoreError
from .views import FOLLOW_INTERVAL, console, json_option, print_json


@click.group()
def service() -> None:
    """The local dispatcher service (started on demand; you never need to start it)."""


@service.command("status")
@json_option
def service_status(as_json: bool) -> None:
    """Say whether the dispatcher service for the current store runs: its pid, uptime, log
    file, the dispatches it runs and the interpreters its tasks run with (a task runs in the
    interpreter that dispatched it). --json prints {running, pid, uptime_s, log, store,
    dispatches, interpreters}."""
    from sqlalchemy.engine import make_url

    from .. import config
    from ..service.client import request
    from ..service.events import LOG_FILE

    store = make_url(config.db_url()).render_as_string(hide_password=True)  # no secret shown
    log = str(config.service_dir() / LOG_FILE)
    try:
        reply = request({"op": "ping"}, start=False, timeout=5)
    except CovalentCoreError:
        if as_json:
            print_json({"running": False, "store": store, "log": log})
        else:
            console.print(f"not running (store {store}; log {log})", highlight=False, markup=False)
        return
    uptime = time.time() - reply["listening_at"]
    running = reply.get("running", [])
    if as_json:
        print_json(
            {
                "running": True,
                "pid": reply["pid"],
                "uptime_s": uptime,
                "log": reply.get("log", log),
                "store": store,
                "dispatches": running,
                "interpreters": reply.get("interpreters", []),
            }
        )
        return
    console.print(
        f"running: pid {reply['pid']}, up {uptime:.0f} s, {len(running)} dispatch(es) running\n"
        f"store {store}\nlog {reply.get('log', log)}",
        highlight=False,
    )
    for dispatch_id in running:
        console.print(f"  {dispatch_id}", highlight=False)
    interpreters = reply.get("interpreters", [])
    if interpreters:
        console.print("tasks run with (each in the interpreter that dispatched it):",
                      highlight=False)  # fmt: skip
        for python in interpreters:
            console.print(f"  {python}", highlight=False)


@service.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Go on printing what the service logs.")
@click.option("--tail", type=click.IntRange(0), default=None, help="Start at the last N lines.")
def service_logs(follow: bool, tail: int | None) -> None:
    """Print the dispatcher service's log (one event per line: event=NAME key=value ...)."""
    from .. import config
    from ..service.events import LOG_FILE

    path = config.service_dir() / LOG_FILE
    offset = 0
    if path.exists() and tail is not None:
        lines = path.read_bytes().splitlines(keepends=True)
        offset = path.stat().st_size - len(b"".join(lines[-tail:] if tail else []))
    while True:
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < offset:  # rotated
                    offset = 0
                fh.seek(offset)
                data = fh.read()
                offset += len(data)
        except FileNotFoundError:
            data = b""
        if data:
            click.echo(data.decode(errors="replace"), nl=False)
        if not follow:
            return
        time.sleep(FOLLOW_INTERVAL)


@service.command("stop")
@json_option
def service_stop(as_json: bool) -> None:
    """Ask the dispatcher service to exit. Running jobs keep running: the next service (any
    client starts it) re-attaches to them. --json prints {was_running}."""
    from ..service.client import request

    try:
        request({"op": "shutdown"}, start=False, timeout=5)
    except CovalentCoreError:
        was_running = False
    else:
        was_running = True
    if as_json:
        print_json({"was_running": was_running})
    else:
        console.print("stopping" if was_running else "not running")
