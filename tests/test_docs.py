"""The user-facing docs hold: the README's first workflow prints what the README shows, its
links work off the repository (on the package index), and the configuration reference names
every setting and environment variable the code reads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from covalent_core import config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
REFERENCE = (ROOT / "docs" / "configuration.md").read_text()


def test_the_first_workflow_prints_what_the_readme_shows(tmp_path: Path) -> None:
    section = README.split("## A first workflow", 1)[1]
    code, shown = re.findall(r"```(?:python)?\n(.*?)```", section, re.S)[:2]
    script = tmp_path / "first.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    ids = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}")
    assert ids.sub("ID", out.stdout).strip() == ids.sub("ID", shown).strip()


def test_the_readme_has_no_link_that_breaks_on_the_package_index() -> None:
    targets = re.findall(r"\]\(([^)]+)\)", README)
    assert targets
    assert [t for t in targets if not t.startswith(("https://", "#"))] == []
    assert "Linux only" in README and "pip install covalent-core" in README


def test_the_reference_names_every_setting_and_variable() -> None:
    for key in (*config.DISPATCHER_KEYS, *config.STORE_KEYS):
        if key != "db_path":  # Covalent's key, read for compatibility
            assert f"`{key}`" in REFERENCE, key
    used = set()
    for path in (ROOT / "covalent_core").rglob("*.py"):
        used |= set(re.findall(r"COVALENT_CORE_[A-Z_]+", path.read_text()))
    internal = {"COVALENT_CORE_TASK_MARK", "COVALENT_CORE_SYSTEM_TMPDIR"}  # ours, not users'
    missing = sorted(v for v in used - internal if v not in REFERENCE)
    assert missing == []
