"""Each executor plugin's README lists every option its executor class takes, and no other:
the option table under "## Options" against the class's ``__init__`` (read from the source,
so that plugins with venvs of their own are checked too)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
EXECUTORS = {
    "covalent-awsbatch": "AWSBatchExecutor",
    "covalent-braket": "BraketExecutor",
    "covalent-dask": "DaskExecutor",
    "covalent-slurm": "SlurmExecutor",
    "covalent-ssh": "SSHExecutor",
}


def class_options(plugin: str, name: str) -> list[str]:
    source = PLUGINS / plugin / plugin.replace("-", "_") / "executor.py"
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ClassDef) and node.name == name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args
                    return [a.arg for a in args.args[1:] + args.kwonlyargs]
    raise AssertionError(f"{name}.__init__ not found in {source}")


def readme_options(plugin: str) -> list[str]:
    text = (PLUGINS / plugin / "README.md").read_text()
    section = text.split("\n## Options\n", 1)
    assert len(section) == 2, f"{plugin}'s README has no '## Options' section"
    body = section[1].split("\n## ", 1)[0]
    names: list[str] = []
    for line in body.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names += re.findall(r"`([A-Za-z_][A-Za-z_0-9]*)`", first_cell)
    return names


def test_every_executor_plugin_is_checked():
    with_executor = {p.parent.parent.name for p in PLUGINS.glob("*/covalent_*/executor.py")}
    assert with_executor == set(EXECUTORS)


@pytest.mark.parametrize("plugin", sorted(EXECUTORS))
def test_the_readme_lists_every_option_of_the_executor(plugin: str):
    in_class = class_options(plugin, EXECUTORS[plugin])
    in_readme = readme_options(plugin)
    assert in_class, "no options read from the class"
    missing = [o for o in in_class if o not in in_readme]
    unknown = [o for o in in_readme if o not in in_class]
    assert not missing, f"{plugin}'s README does not list {missing}"
    assert not unknown, (
        f"{plugin}'s README lists {unknown}, which {EXECUTORS[plugin]} does not take"
    )
    assert len(in_readme) == len(set(in_readme)), "an option is listed twice"
