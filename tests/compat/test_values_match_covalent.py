"""Golden programs dispatched here return exactly what real Covalent 0.240 returned.

The electrons of these programs return values derived from the exact inputs they received
(types, order and containers included), so a task that receives a tuple where Covalent
passes a list, or a dict in another order, changes the result.
"""

from __future__ import annotations

import pytest
from golden_programs import golden
from graphdump import dump

import covalent_core as ct

RUN = [entry for entry in golden("constructs") + golden("random") if "status" in entry[2]]


@pytest.mark.parametrize(
    ("source", "theirs"),
    [(source, theirs) for _, source, theirs in RUN],
    ids=[program.name for program, _, _ in RUN],
)
def test_dispatch_returns_covalents_value(source, theirs):
    ours = dump(ct, {"name": theirs["name"], "source": source}, run=True)
    assert (ours["status"], ours["result"]) == (theirs["status"], theirs["result"])
