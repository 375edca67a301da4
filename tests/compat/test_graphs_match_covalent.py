"""Every golden program builds the graph real Covalent 0.240 built: ids, names and edges."""

from __future__ import annotations

import pytest
from golden_programs import golden
from graphdump import dump

import covalent_core as ct

PROGRAMS = golden("constructs") + golden("random")


@pytest.mark.parametrize(
    ("source", "theirs"),
    [(source, theirs) for _, source, theirs in PROGRAMS],
    ids=[program.name for program, _, _ in PROGRAMS],
)
def test_graph_is_node_for_node_covalents(source, theirs):
    ours = dump(ct, {"name": theirs["name"], "source": source}, run=False)
    if "error" in theirs:
        assert ours.get("error") == theirs["error"], ours
        return
    assert "error" not in ours, ours["message"]
    assert ours["graph"]["nodes"] == theirs["graph"]["nodes"]
    assert ours["graph"]["edges"] == theirs["graph"]["edges"]
