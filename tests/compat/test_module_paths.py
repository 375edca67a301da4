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
