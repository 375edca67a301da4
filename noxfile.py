"""Sessions per package: the core, each package under plugins/, and the packages' wheels."""

from __future__ import annotations

from pathlib import Path

import nox

PLUGINS = sorted(
    p.name for p in Path("plugins").glob("covalent-*") if (p / "pyproject.toml").exists()
)
# Local packages a plugin's test extra needs that are not on an index yet.
LOCAL = [
    "-e",
    "testing/pytest-covalent-servers[braket]",
    "-e",
    "plugins/covalent-aws",
    "-e",
    "plugins/covalent-ssh",
]


@nox.session
def core(session: nox.Session) -> None:
    """Test covalent-core."""
    session.install("-e", ".[test]", *LOCAL, "-e", "examples/covalent-workdir")
    session.run("ruff", "check", "covalent_core", "tests", "examples")
    session.run("pytest", *session.posargs)


@nox.session
@nox.parametrize("plugin", PLUGINS)
def plugin(session: nox.Session, plugin: str) -> None:
    """Test one package under plugins/ against the core, from its own directory."""
    session.install("-e", ".[test]", *LOCAL, "-e", f"plugins/{plugin}[test]")
    session.chdir(f"plugins/{plugin}")
    session.run("pytest", *session.posargs)


@nox.session
def packages(session: nox.Session) -> None:
    """Build every package, check it with twine, and try core + slurm from their wheels."""
    session.run("scripts/check-packages.sh", external=True)
