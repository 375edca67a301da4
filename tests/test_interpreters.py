"""A task runs in the interpreter of the process that dispatched it: two venvs sharing one
data directory (and so one service) each get their own, and ``service status`` lists them."""

from __future__ import annotations

import json
import site
import subprocess
import sys
from pathlib import Path

from helpers import cli

import covalent_core as ct

CLIENT = """
import sys
import covalent_core as ct

@ct.electron
def where():
    return sys.executable

@ct.lattice
def flow():
    return where()

print(ct.dispatch_sync(flow, timeout=120)().result)
"""


@ct.electron
def where() -> str:
    return sys.executable


@ct.lattice
def flow() -> str:
    return where()


def second_venv(root: Path) -> Path:
    """A venv of its own (its own ``sys.executable``) that finds this one's packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    out = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    # Its .pth files too (an editable install's finder): as site would read them there.
    lines = [f"import site; site.addsitedir({d!r})" for d in site.getsitepackages()]
    Path(out.stdout.strip(), "ours.pth").write_text("\n".join(lines) + "\n")
    return python


def test_each_venv_runs_its_tasks_with_its_own_python(tmp_path: Path) -> None:
    other = second_venv(tmp_path / "venv-b")
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    out = subprocess.run([str(other), str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(other)
    assert ct.dispatch_sync(flow, timeout=120)().result == sys.executable
    status = json.loads(cli("service", "status", "--json").stdout)
    assert str(other) in status["interpreters"] and sys.executable in status["interpreters"]
    assert str(other) in cli("service", "status").stdout


def test_an_executor_that_names_its_python_runs_every_task_with_it(tmp_path: Path) -> None:
    other = second_venv(tmp_path / "venv-c")

    @ct.electron(executor=ct.LocalExecutor(python_path=str(other)))
    def named():
        return sys.executable

    @ct.lattice
    def flow_named():
        return named()

    assert ct.dispatch_sync(flow_named, timeout=120)().result == str(other)
