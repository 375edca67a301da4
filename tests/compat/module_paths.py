"""Covalent's module paths that user code and Covalent's own docs and functional tests import
from, with a name each must hold. ``python module_paths.py`` (in Covalent 0.240's venv)
checks them against real Covalent and writes ``golden/module_paths.json``."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

PATHS: dict[str, list[str]] = {
    "_results_manager.results_manager": ["get_result", "cancel"],
    "_results_manager.result": ["Result"],
    "_shared_files.exceptions": [
        "MissingLatticeRecordError",
        "TaskCancelledError",
        "TaskRuntimeError",
        "CommandNotFoundError",
    ],
    "_file_transfer.enums": [
        "Order",
        "FileSchemes",
        "FileTransferStrategyTypes",
        "SchemeToStrategyMap",
        "FtCallDepReturnValue",
    ],
    "_file_transfer.file_transfer": ["FileTransfer", "TransferFromRemote", "TransferToRemote"],
    "_file_transfer.strategies": [],
    "_workflow.lattice": ["Lattice"],
    "_workflow.electron": ["Electron"],
    "_workflow.depsbash": ["DepsBash"],
    "_workflow.depscall": ["DepsCall"],
    "_workflow.depspip": ["DepsPip"],
    "_workflow.depsmodule": ["DepsModule"],
    "_workflow.deps": ["Deps"],
    "_workflow.transport": ["_TransportGraph"],
    "_workflow.transportable_object": ["TransportableObject"],
    "_workflow.lepton": ["Lepton"],
    "executor": ["_executor_manager", "BaseExecutor"],
    "_dispatcher_plugins": ["LocalDispatcher"],
    "_dispatcher_plugins.local": ["LocalDispatcher"],
    "triggers": [
        "BaseTrigger",
        "TimeTrigger",
        "DirTrigger",
        "DatabaseTrigger",
        "SQLiteTrigger",
        "available_triggers",
    ],
    "_shared_files.utils": [
        "format_server_url",
        "get_named_params",
        "get_serialized_function_str",
        "get_time",
        "get_timedelta",
        "get_ui_url",
        "reformat",
    ],
}
GOLDEN = Path(__file__).with_name("golden") / "module_paths.json"


def present(package: str) -> dict[str, list[str]]:
    """Of :data:`PATHS`, the names that ``package.<path>`` holds."""
    found: dict[str, list[str]] = {}
    for path, names in PATHS.items():
        module = importlib.import_module(f"{package}.{path}")
        found[path] = [n for n in names if hasattr(module, n)]
    return found


if __name__ == "__main__":
    theirs = present("covalent")
    missing = {
        p: sorted(set(PATHS[p]) - set(n)) for p, n in theirs.items() if set(n) != set(PATHS[p])
    }
    if missing:
        sys.exit(f"not in Covalent: {missing}")
    GOLDEN.write_text(json.dumps(theirs, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
