"""Covalent's module paths resolve to ours: each path Covalent 0.240 has (recorded from real
Covalent in ``golden/module_paths.json`` by ``module_paths.py``) imports as
``covalent_core.<same path>`` and holds the same names, which work."""

from __future__ import annotations

import json

import pytest
from module_paths import GOLDEN, PATHS, present

import covalent_core as ct
from covalent_core.errors import DispatchNotFoundError

THEIRS = json.loads(GOLDEN.read_text())


def test_the_recording_covers_every_path():
    assert set(THEIRS) == set(PATHS)


@pytest.mark.parametrize("path", sorted(THEIRS))
def test_the_path_holds_covalents_names(path: str):
    assert present("covalent_core")[path] == THEIRS[path]


def test_an_unknown_dispatch_is_a_missing_lattice_record_as_in_covalent():
    from covalent_core._shared_files.exceptions import MissingLatticeRecordError

    with pytest.raises(MissingLatticeRecordError) as caught:
        ct.get_result("0" * 36)
    assert isinstance(caught.value, DispatchNotFoundError)


def test_names_found_there_work():
    from covalent_core._file_transfer.enums import Order
    from covalent_core._results_manager.results_manager import get_result
    from covalent_core._workflow.depsbash import DepsBash
    from covalent_core._workflow.transport import _TransportGraph
    from covalent_core.executor import _executor_manager

    assert get_result is ct.get_result and DepsBash is ct.DepsBash
    assert Order("before") is ct.fs.Order.BEFORE
    assert isinstance(ct.lattice(len).build_graph([]), _TransportGraph)
    assert "local" in _executor_manager.list_executors(print_names=False)


def test_the_shared_utils_answer_as_covalents():
    """Outputs recorded from real Covalent 0.240 for the same calls."""
    from datetime import timedelta

    from covalent_core._shared_files import utils

    def f(a, b=2, *args, c, **kw):
        return a

    assert utils.get_named_params(f, (1, 2, 3, 4), {"c": 5, "x": 6}) == (
        {"a": 1, "b": 2, "arg[2]": 3, "arg[3]": 4},
        {"c": 5, "x": 6},
    )
    assert utils.format_server_url("localhost", 48008) == "http://localhost:48008"
    assert utils.format_server_url("example.org", 443) == "https://example.org"
    assert utils.format_server_url("http://h/x", 8080) == "http://h:8080/x"
    assert utils.get_time(timedelta(days=1, hours=2, minutes=3, seconds=4)) == "01-02:03:04"
    assert utils.get_timedelta("1-12:02:31") == timedelta(days=1, hours=12, minutes=2, seconds=31)
    assert utils.reformat(7) == "07"
    assert "def f(a, b=2" in utils.get_serialized_function_str(ct.electron(f))
