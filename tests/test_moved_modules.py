"""Modules that moved still import under their old names, and values pickled under those
names (the lattices and inputs of dispatches stored before the move) still load."""

from __future__ import annotations

import pickle
import subprocess
import sys

import covalent_core as ct
from covalent_core._moved import MOVED


def double(x: int) -> int:
    return 2 * x


DUNDERS = "__builtins__ __cached__ __file__ __loader__ __name__ __package__ __path__ __spec__"


def test_every_old_name_imports_as_its_new_module():
    for old, new in MOVED.items():
        code = (
            f"import {old} as m, {new[-1]} as n\n"
            f"missing = set(vars(n)) - set(vars(m)) - set({DUNDERS!r}.split()) - {{'__doc__'}}\n"
            "assert not missing, missing\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, (old, done.stderr.strip().splitlines()[-1:])


def old_pickle(value: object, old: str, new: str) -> bytes:
    """``value`` pickled as it was before its class's module moved from ``old`` to ``new``."""
    data = pickle.dumps(value, protocol=0)
    assert f"c{new}\n".encode() in data
    return data.replace(f"c{new}\n".encode(), f"c{old}\n".encode())


def test_values_pickled_under_the_old_names_load():
    value = ct.TransportableObject({"a": 1})
    data = old_pickle(
        value, "covalent_core.transportable", "covalent_core._workflow.transportable_object"
    )
    assert pickle.loads(data).get_deserialized() == {"a": 1}
    flow = ct.lattice(double)
    data = old_pickle(flow, "covalent_core.workflow", "covalent_core._workflow.lattice")
    loaded = pickle.loads(data)
    assert isinstance(loaded, ct.Lattice) and loaded.workflow_function(4) == 8
