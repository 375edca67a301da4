"""The executor conformance suite: what every executor must do, cancellation first.

Subclass :class:`ExecutorConformance` in a plugin's tests and override three fixtures::

    from covalent_core.testing import ExecutorConformance

    class TestMyExecutor(ExecutorConformance):
        @pytest.fixture
        def executor(self):
            return MyExecutor(root=...)

        @pytest.fixture
        def job_alive(self, executor):
            return lambda handle: my_resource_says_running(handle)

        @pytest.fixture
        def leftovers(self, executor):
            return lambda: list_what_my_executor_left_on_the_resource()

Each test dispatches real workflows through the real dispatcher service (in a private data
directory and temporary directory) and checks facts on the resource: the probe says the job
is gone, the listing is empty, the stage never ran. The tests come in tiers, as fsspec's
abstract tests do: :class:`~.basic.BasicTier` (what every executor must pass),
:class:`~.reattach.ReattachTier` (the dispatcher is killed mid-task; an executor without
``reattach`` declares so and is checked for the fallback), :class:`~.containment.ContainmentTier`
(a task's double-forked daemon dies with it), :class:`~.environment.EnvironmentTier` (its
``DepsBash``, ``DepsCall``, ``call_before`` and ``call_after`` run on the resource, around the
task, and a cancel stops a long step), and the optional
:class:`~.optional.TimeoutTier` and :class:`~.optional.PackingTier`, switched on by capability
flags (class attributes). Subclass one tier to run only it.
"""

from __future__ import annotations

from .basic import BasicTier
from .containment import ContainmentTier
from .environment import EnvironmentTier
from .observe import dispatch_task, finished_task, marker_processes, wait_until
from .optional import PackingTier, TimeoutTier
from .reattach import ReattachTier


class ExecutorConformance(
    BasicTier, ReattachTier, ContainmentTier, EnvironmentTier, TimeoutTier, PackingTier
):
    """Every tier of the conformance suite; capability flags skip what an executor lacks."""


__all__ = [
    "BasicTier",
    "ContainmentTier",
    "EnvironmentTier",
    "ExecutorConformance",
    "PackingTier",
    "ReattachTier",
    "TimeoutTier",
    "dispatch_task",
    "finished_task",
    "marker_processes",
    "wait_until",
]
