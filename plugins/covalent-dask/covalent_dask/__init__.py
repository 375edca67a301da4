"""covalent-dask: run covalent-core tasks on a Dask cluster, and kill them on cancel.

from covalent_dask import DaskExecutor

@ct.electron(executor=DaskExecutor(scheduler_address="tcp://127.0.0.1:8786"))

or ``executor="dask"``, Covalent's default executor, with ``scheduler_address`` in
``[executors.dask]`` of the config file (or none: a LocalCluster of the dispatcher service).
"""

from __future__ import annotations

from covalent_core.sdk import Executor, hookimpl

from .executor import DaskExecutor, DaskSchedulerError

__version__ = "0.1.0"


@hookimpl
def covalent_executor_classes() -> list[type[Executor]]:
    """The executors this plugin provides."""
    return [DaskExecutor]


__all__ = ["DaskExecutor", "DaskSchedulerError"]
