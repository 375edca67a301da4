"""Sessions per package: the core now; each executor plugin under plugins/ as it lands."""

from __future__ import annotations

from pathlib import Path

import nox

PLUGINS = sorted(
    p.name for p in Path("plugins").glob("covalent-*") if (p / "pyproject.toml").exists()
)


@nox.session
def core(session: nox.Session) -> None:
    """Test covalent-core."""
    session.install("-e", ".[test]", "-e", "examples/covalent-workdir")
    session.run("ruff", "check", "covalent_core", "tests", "examples")
    session.run("pytest", *session.posargs)


@nox.session
@nox.parametrize("plugin", PLUGINS)
def plugin(session: nox.Session, plugin: str) -> None:
    """Test one executor plugin against the core."""
    session.install("-e", ".[test]", "-e", f"plugins/{plugin}")
    session.run("pytest", f"plugins/{plugin}/tests", *session.posargs)
