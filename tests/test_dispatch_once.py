"""``dispatch()`` is exactly once from the caller's side: it returns the id of a dispatch that
runs, or raises having stored nothing; an idempotency key makes a retry return the first id.
(The chaos test checks the same while the service is killed under eight clients.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import covalent_core as ct
from covalent_core.errors import CovalentCoreError
from covalent_core.testing import isolated_store


@ct.electron
def add(a, b):
    return a + b


@ct.lattice
def adding(a, b):
    return add(a, b)


def test_a_second_dispatch_with_the_same_key_returns_the_first_ones_id():
    first = ct.dispatch(adding, key="run-42")(1, 2)
    again = ct.dispatch(adding, key="run-42")(5, 6)
    assert again == first
    assert ct.get_result(first, wait=True, timeout=60).result == 3
    other = ct.dispatch(adding, key="run-43")(5, 6)
    assert other != first
    assert ct.get_result(other, wait=True, timeout=60).result == 11


def test_a_key_must_be_a_short_string():
    with pytest.raises(TypeError, match="key"):
        ct.dispatch(adding, key=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key"):
        ct.dispatch(adding, key="x" * 256)


def test_a_dispatch_whose_service_cannot_start_raises_and_stores_nothing(tmp_path: Path):
    with isolated_store(tmp_path / "data"):
        # A setting the service refuses, read only when it is started.
        os.environ["COVALENT_CORE_POLL_INTERVAL"] = "-1"
        with pytest.raises(CovalentCoreError, match="COVALENT_CORE_POLL_INTERVAL"):
            ct.dispatch(adding, key="never")(1, 2)
        del os.environ["COVALENT_CORE_POLL_INTERVAL"]
        assert ct.list_dispatches() == []
        assert not (tmp_path / "data" / "values").exists() or not any(
            (tmp_path / "data" / "values").iterdir()
        )
        # Nothing of it was kept: the same key dispatches anew, and runs.
        dispatch_id = ct.dispatch(adding, key="never")(1, 2)
        assert ct.get_result(dispatch_id, wait=True, timeout=60).result == 3
