"""A progress bar while ``ct.get_result(id, wait=True)`` waits: tasks done of all, read from
the store twice a second in a thread of its own (the wait itself stays pushed by the
service), drawn by rich on stderr, or in a notebook (an HTML ``<progress>`` updated in place:
no ipywidgets needed). Shown only where someone looks: a terminal or a notebook, unless
``progress=False``; never in pipes, CI logs or scripts' output.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator

REFRESH = 0.5
"""Seconds between two reads of the counts."""


def interactive() -> bool:
    """True in a terminal or a notebook."""
    return in_notebook() or sys.stderr.isatty()


def in_notebook() -> bool:
    """True in a Jupyter kernel."""
    return "ipykernel" in sys.modules


def _counts(dispatch_id: str) -> tuple[int, int]:
    from .store import open_store
    from .store import queries as q

    with open_store().read() as conn:
        return q.task_counts(conn, dispatch_id)


def _poll(dispatch_id: str, show: Callable[[int, int], None]) -> Iterator[None]:
    """Call ``show(done, total)`` every :data:`REFRESH` seconds in a thread while inside."""
    stop = threading.Event()

    def update() -> None:
        while True:
            with contextlib.suppress(Exception):  # a bar never breaks the wait
                show(*_counts(dispatch_id))
            if stop.wait(REFRESH):
                return

    thread = threading.Thread(target=update, name="covalent-core-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def _notebook_bar(dispatch_id: str) -> Iterator[None]:
    """An HTML progress element in the cell's output, updated in place."""
    from IPython.display import HTML, display

    def html(done: int, total: int) -> HTML:
        return HTML(
            f"<div>dispatch {dispatch_id[:8]} <progress value='{done}' max='{max(total, 1)}'>"
            f"</progress> {done}/{total} tasks</div>"
        )

    handle = display(html(0, 0), display_id=True)
    try:
        yield from _poll(dispatch_id, lambda done, total: handle.update(html(done, total)))
    finally:
        with contextlib.suppress(Exception):  # the bar stays, with the last counts
            handle.update(html(*_counts(dispatch_id)))


@contextlib.contextmanager
def progress_bar(dispatch_id: str, enabled: bool | None) -> Iterator[None]:
    """While inside, show the dispatch's tasks done (``enabled`` None: if interactive)."""
    if not (interactive() if enabled is None else enabled):
        yield
        return
    if in_notebook():
        yield from _notebook_bar(dispatch_id)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn(f"dispatch {dispatch_id[:8]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tasks"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("tasks", total=None)
        yield from _poll(
            dispatch_id, lambda done, total: bar.update(task, completed=done, total=total)
        )
