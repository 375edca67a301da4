"""``covalent-core logs`` and ``watch``: following a dispatch while it runs."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from ..status import Status
from .arguments import dispatch_id_argument, exit_code
from .views import (
    FOLLOW_INTERVAL,
    console,
    json_option,
    pick_task,
    print_failed,
    print_json,
    watch_view,
)


@click.command()
@dispatch_id_argument
@click.option("--task", "task", default=None, help="Only this task's output: its id or name.")
@click.option("-f", "--follow", is_flag=True, help="Go on printing until the tasks end.")
@click.option("--stdout", "only", flag_value="stdout", default=None, help="Only stdout.")
@click.option("--stderr", "only", flag_value="stderr", help="Only stderr.")
@click.option("--tail", type=click.IntRange(0), default=None, help="Start at the last N lines.")
@json_option
def logs(
    dispatch_id: str,
    task: str | None,
    follow: bool,
    only: str | None,
    tail: int | None,
    as_json: bool,
) -> None:
    """Print what the tasks of a dispatch wrote: while they run, and after they ended, were
    cancelled or failed. Their stdout goes to stdout and their stderr to stderr (in red in a
    terminal); each line says its task, unless --task names one. Output of any size is read
    a piece at a time.

    With -f, exits with the dispatch's (or the task's) code once it ended. --json prints JSON
    lines {node_id, name, stream, text}.
    """
    from ..api import get_result
    from ..task_output import Follower, prefixed

    streams = (only,) if only else ("stdout", "stderr")
    follower = Follower(tail=tail)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    red = sys.stderr.isatty()
    try:
        while True:
            result = get_result(dispatch_id, intermediate_outputs=False)
            nodes = [pick_task(result, task)] if task is not None else result.tasks
            finished = all(n.status.is_terminal for n in nodes) or result.is_finished
            for node in nodes:
                prefix = b"" if task is not None else f"[{node.node_id} {node.name}] ".encode()
                for stream in streams:
                    for chunk, at_start in follower.new(node, stream):
                        if as_json:
                            text = chunk.decode(errors="replace")
                            document = {"node_id": node.node_id, "name": node.name}
                            print_json({**document, "stream": stream, "text": text})
                            continue
                        data = prefixed(chunk, prefix, at_start) if prefix else chunk
                        if stream == "stderr" and red:
                            data = b"\x1b[31m" + data + b"\x1b[0m"
                        (out if stream == "stdout" else err).write(data)
                out.flush()
                err.flush()
            if not follow:
                return
            if finished:
                status = nodes[0].status if task is not None else result.status
                sys.exit(exit_code(status))
            time.sleep(FOLLOW_INTERVAL)
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


@click.command()
@dispatch_id_argument
@json_option
def watch(dispatch_id: str, as_json: bool) -> None:
    """Follow a dispatch live: tasks done, the running ones with their time and last output
    line, the ones being cancelled and why. Exits with the dispatch's code once it ends.
    --json prints a JSON line {dispatch_id, status, done, total, running: [{node_id, name,
    status}]} whenever that changes."""
    from rich.live import Live

    from ..api import get_result
    from ..service.client import store_full

    result = get_result(dispatch_id, intermediate_outputs=False)
    if as_json:
        last = None
        while True:
            snapshot = _watch_json(result)
            if snapshot != last:
                print_json(snapshot)
                last = snapshot
            if result.is_finished:
                sys.exit(exit_code(result.status))
            time.sleep(FOLLOW_INTERVAL)
            result = get_result(dispatch_id, intermediate_outputs=False)
    with Live(watch_view(result), console=console, auto_refresh=False) as live:
        while not result.is_finished:
            time.sleep(FOLLOW_INTERVAL)
            result = get_result(dispatch_id, intermediate_outputs=False)
            live.update(watch_view(result, store_full()), refresh=True)
    for node in result.tasks:
        if node.status is Status.FAILED:
            print_failed(node)
    sys.exit(exit_code(result.status))


def _watch_json(result: Any) -> dict[str, Any]:
    live = (Status.RUNNING, Status.CANCELLING)
    return {
        "dispatch_id": result.dispatch_id,
        "status": str(result.status),
        "done": sum(1 for n in result.tasks if n.status.is_terminal),
        "total": len(result.tasks),
        "running": [
            {"node_id": n.node_id, "name": n.name, "status": str(n.status)}
            for n in result.tasks
            if n.status in live
        ],
    }
