"""Every module of covalent-core and of each plugin installed beside it imports on its own
(a module moved or renamed without its importers fails here, not in a task's process)."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import subprocess
import sys

import pytest

import covalent_core

PLUGINS = [
    "covalent_aws",
    "covalent_awsbatch",
    "covalent_braket",
    "covalent_dask",
    "covalent_slurm",
    "covalent_ssh",
    "covalent_workdir",
    "pytest_covalent_servers",
]
NOT_ALONE = {"covalent_core.store.migrations.env"}  # run by Alembic, with its context


def modules(package: str) -> list[str]:
    root = importlib.import_module(package)
    return [package] + [
        m.name
        for m in pkgutil.walk_packages(root.__path__, f"{package}.")
        if not m.name.endswith("__main__") and m.name not in NOT_ALONE
    ]


@pytest.mark.parametrize(
    "package",
    ["covalent_core", *(p for p in PLUGINS if importlib.util.find_spec(p) is not None)],
)
def test_every_module_imports_in_a_fresh_interpreter(package: str):
    names = modules(package)
    # One fresh interpreter per package: each module imported first thing, nothing cached.
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    for name in names:
        done = subprocess.run(
            [sys.executable, "-c", script, name], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{name}: {done.stderr.strip().splitlines()[-1:]}"


def test_the_sdk_exports_what_it_names():
    import covalent_core.sdk as sdk

    for name in sdk.__all__:
        value = getattr(sdk, name)
        assert not isinstance(value, type(sdk)) or name == "RUNNER_PATH", name
    assert covalent_core.sdk.deferred("json").dumps([]) == "[]"
