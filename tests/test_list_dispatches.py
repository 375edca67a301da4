"""``ct.list_dispatches()`` gives typed summaries: what a dispatch is and how it stands, never
what the store keeps about the dispatching process."""

from __future__ import annotations

import covalent_core as ct
from covalent_core._results_manager.result import DispatchSummary


@ct.electron
def one():
    return 1


@ct.lattice
def listed_flow():
    return one()


def test_summaries_are_typed_and_say_nothing_of_the_environment() -> None:
    dispatch_id = ct.dispatch(listed_flow)()
    ct.get_result(dispatch_id, wait=True, timeout=60)
    listed = ct.list_dispatches(100, name="listed_flow")
    [mine] = [d for d in listed if d.dispatch_id == dispatch_id]
    assert isinstance(mine, DispatchSummary)
    assert (mine.name, mine.status, mine.num_nodes) == ("listed_flow", ct.Status.COMPLETED, 2)
    assert mine.created_at <= mine.started_at <= mine.ended_at
    shown = repr(listed) + str(listed) + listed._repr_html_()
    assert dispatch_id in shown
    for private in ("sys_path", "cwd", "environment", "variables_kept_by", "owner", "lease"):
        assert private not in shown, private
