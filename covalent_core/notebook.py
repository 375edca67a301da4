"""How results look in a notebook: compact HTML tables with coloured statuses, cancel reasons,
times, outputs' short reprs and, for errors, the remote traceback (``_repr_html_``).

Every text is escaped; nothing secret is shown (executor configurations are left out).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .status import Status

if TYPE_CHECKING:
    from ._results_manager.result import CancelReport, NodeResult, Result

COLOURS = {
    Status.COMPLETED: "#1a7f37",
    Status.FAILED: "#cf222e",
    Status.CANCELLED: "#9a6700",
    Status.CANCELLING: "#bf8700",
    Status.RUNNING: "#0969da",
}
REPR_MAX = 80
STYLE = "border-collapse:collapse;font-family:monospace;font-size:12px"
CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top"


def status_html(status: Status | str) -> str:
    """A status, in its colour."""
    status = Status(status)
    colour = COLOURS.get(status, "#6e7781")
    return f'<span style="color:{colour};font-weight:bold">{html.escape(str(status))}</span>'


def _time(ts: float | None) -> str:
    return "" if ts is None else dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _short(text: str | None) -> str:
    if text is None:
        return ""
    text = text if len(text) <= REPR_MAX else text[: REPR_MAX - 1] + "…"
    return html.escape(text)


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], caption: str = "") -> str:
    """An HTML table; cells are HTML already (escape text before)."""
    head = "".join(f'<th style="{CELL}">{html.escape(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td style="{CELL}">{cell}</td>' for cell in row) + "</tr>"
        for row in rows
    )
    cap = f'<caption style="text-align:left">{caption}</caption>' if caption else ""
    return f'<table style="{STYLE}">{cap}<tr>{head}</tr>{body}</table>'


def _error(node: NodeResult) -> str:
    if not node.error:
        return ""
    first = _short(node.error.splitlines()[0])
    if not node.traceback:
        return first
    trace = html.escape(node.traceback)
    return f"<details><summary>{first}</summary><pre>{trace}</pre></details>"


def _reason(node: NodeResult) -> str:
    return html.escape(node.cancel_summary)


def node_row(node: NodeResult) -> list[str]:
    """One node as table cells."""
    note = _error(node) or _short(node.output_repr)
    if node.reused_from:
        note = (note + "<br>" if note else "") + _short(f"reused from {node.reused_from}")
    return [
        str(node.node_id),
        html.escape(node.name),
        status_html(node.status),
        _reason(node),
        _time(node.started_at),
        _time(node.ended_at),
        note,
    ]


NODE_HEADERS = ("id", "name", "status", "cancel reason", "started", "ended", "output / error")


def result_html(result: Result) -> str:
    """A dispatch: its status and each task."""
    caption = (
        f"<b>{html.escape(result.name)}</b> {html.escape(result.dispatch_id)}: "
        f"{status_html(result.status)}"
    )
    if result.redispatched_from:
        caption += html.escape(f" (redispatch of {result.redispatched_from})")
    if result.error:
        caption += f"<br>{_short(result.error)}"
    if result.status is Status.COMPLETED:
        try:
            caption += f"<br>result: <code>{_short(repr(result.result))}</code>"
        except Exception:  # a value that cannot be loaded here: the table still shows
            caption += "<br>result: (cannot be loaded here)"
    return table(NODE_HEADERS, (node_row(n) for n in result.tasks), caption)


def node_html(node: NodeResult) -> str:
    """One node."""
    return table(NODE_HEADERS, [node_row(node)])


def cancel_report_html(report: CancelReport) -> str:
    """What a cancel did."""
    rows = [[str(i), html.escape(report.names.get(i, "")), "cancelled"] for i in report.cancelled]
    rows += [
        [str(i), html.escape(report.names.get(i, "")), f"already {status_html(status)}"]
        for i, status in sorted(report.already_finished.items())
    ]
    caption = f"cancel of {html.escape(report.dispatch_id)}: {status_html(report.dispatch_status)}"
    if not report.changed_anything:
        caption += " (nothing to cancel: already finished)"
    return table(("id", "name", "effect"), rows, caption)


def dispatches_html(rows: Iterable[Any]) -> str:
    """A list of dispatches (rows of the store)."""
    cells = (
        [
            html.escape(row.dispatch_id),
            html.escape(row.name),
            status_html(row.status),
            _time(row.created_at),
            _time(row.ended_at),
        ]
        for row in rows
    )
    return table(("dispatch id", "name", "status", "created", "ended"), cells)
