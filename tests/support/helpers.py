"""Small helpers for tests: waiting for observable facts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import covalent_core as ct

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 30.0, interval: float = 0.02) -> T:
    """Return the first truthy value of ``check()``; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {check}")
        time.sleep(interval)


def node(dispatch_id: str, node_id: int) -> ct.NodeResult:
    """The node as stored right now."""
    return ct.get_result(dispatch_id).get_node(node_id)


def wait_for_handle(dispatch_id: str, node_id: int, timeout: float = 30.0) -> dict:
    """Wait until the node's job handle is stored and return it."""
    return wait_until(lambda: node(dispatch_id, node_id).job_handle, timeout)


def wait_for_file(path, timeout: float = 30.0) -> str:
    """Wait until ``path`` exists with content; return the content."""

    def read() -> str:
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            return ""

    return wait_until(read, timeout)
