"""Modules that moved, still found under their old names.

Values pickled before a move name the module their class or function was in: stored
lattices, electrons, file transfers and task environments of earlier dispatches (read again
by ``redispatch``), and code written against the old paths. Each old name imports as its
new module (``workflow``, split in two, as both together).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence

MOVED: dict[str, tuple[str, ...]] = {
    "covalent_core.workflow": (
        "covalent_core._workflow.electron",
        "covalent_core._workflow.lattice",
    ),
    "covalent_core.binding": ("covalent_core._workflow.binding",),
    "covalent_core.deps": ("covalent_core._workflow.deps",),
    "covalent_core.leptons": ("covalent_core._workflow.lepton",),
    "covalent_core.lepton_calls": ("covalent_core._workflow.lepton_calls",),
    "covalent_core.transportable": ("covalent_core._workflow.transportable_object",),
    "covalent_core.graph_tasks": ("covalent_core._workflow.graph_tasks",),
    "covalent_core.drawing": ("covalent_core._workflow.drawing",),
    "covalent_core.fs": ("covalent_core._file_transfer.file_transfer",),
    "covalent_core.fs_strategies": ("covalent_core._file_transfer.strategies",),
    "covalent_core.transfer_calls": ("covalent_core._file_transfer.transfer_calls",),
    "covalent_core.result": ("covalent_core._results_manager.result",),
    "covalent_core.executors": ("covalent_core.sdk",),
    "covalent_core.executors.base": ("covalent_core.sdk.base",),
    "covalent_core.executors.runner": ("covalent_core.sdk.runner",),
    "covalent_core.executors.processes": ("covalent_core.sdk.processes",),
    "covalent_core.executors.local": ("covalent_core.local.executor",),
    "covalent_core.executors.values": ("covalent_core.values",),
}


class _Alias(importlib.abc.Loader):
    def __init__(self, targets: tuple[str, ...]) -> None:
        self.targets = targets

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        modules = [importlib.import_module(t) for t in self.targets]
        if len(modules) == 1:
            return modules[0]
        merged = types.ModuleType(spec.name)
        for module in modules:
            merged.__dict__.update(
                {k: v for k, v in vars(module).items() if not k.startswith("__")}
            )
        return merged

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module is the new one."""


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        targets = MOVED.get(fullname)
        if targets is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(targets))


def install() -> None:
    """Find the old names from now on (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
