"""A progress bar while ``ct.get_result(id, wait=True)`` waits: tasks done of all, read from
the store twice a second in a thread of its own (the wait itself stays pushed by the
service), drawn by rich on stderr or in a notebook. Shown only where someone looks: a
terminal, or a notebook with ipywidgets, unless ``progress=False``; never in pipes, CI logs or
scripts' output.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

REFRESH = 0.5
"""Seconds between two reads of the counts."""


def interactive() -> bool:
    """True in a terminal, or in a notebook that can draw a live bar (rich needs ipywidgets
    there; without it, it would leave a warning in the cell)."""
    if "ipykernel" in sys.modules:
        import importlib.util

        return importlib.util.find_spec("ipywidgets") is not None
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress_bar(dispatch_id: str, enabled: bool | None) -> Iterator[None]:
    """While inside, show the dispatch's tasks done (``enabled`` None: if interactive)."""
    if not (interactive() if enabled is None else enabled):
        yield
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from .store import open_store
    from .store import queries as q

    store = open_store()
    stop = threading.Event()
    with Progress(
        TextColumn(f"dispatch {dispatch_id[:8]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tasks"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("tasks", total=None)

        def update() -> None:
            while True:
                with contextlib.suppress(Exception):  # a bar never breaks the wait
                    with store.read() as conn:
                        done, total = q.task_counts(conn, dispatch_id)
                    bar.update(task, completed=done, total=total)
                if stop.wait(REFRESH):
                    return

        thread = threading.Thread(target=update, name="covalent-core-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)
