#!/usr/bin/env bash
# Build every package (wheel and sdist) and check them with twine; then, in an empty venv,
# install covalent-core and covalent-slurm from those wheels only (their dependencies from the
# index), list the executors, check covalent_core.testing with the `testing` extra, and run
# tests from covalent-slurm's sdist (without this repository's tests/) against a real Slurm.
set -euo pipefail
cd "$(dirname "$0")/.."
dist=$(mktemp -d)
trap 'rm -rf "$dist"' EXIT
for pkg in . plugins/covalent-* testing/pytest-covalent-servers examples/covalent-workdir; do
  .venv/bin/python -m build --sdist --wheel --outdir "$dist" "$pkg" >"$dist/build.log" 2>&1 \
    || { cat "$dist/build.log" >&2; exit 1; }
done
.venv/bin/python -m twine check --strict "$dist"/*.whl "$dist"/*.tar.gz

venv="$dist/venv"
python3 -m venv "$venv"
wheel() { ls "$dist"/"$1"-*.whl; }
# Local mode needs no covalent-ssh: it is not installed.
"$venv/bin/pip" install -q "$(wheel covalent_core)[testing]" "$(wheel covalent_slurm)" \
  "$(wheel pytest_covalent_servers)" 2> >(grep -v "^WARNING: Location" >&2)
out=$("$venv/bin/covalent-core" executors)
echo "$out"
grep -q "slurm" <<<"$out" || { echo "covalent-core executors does not list slurm" >&2; exit 1; }
"$venv/bin/python" -c "from covalent_core.testing import ExecutorConformance; print('testing extra:', ExecutorConformance.__name__)"

# covalent-slurm's own tests, run from its sdist against the test cluster.
mkdir "$dist/sdist"
tar -xzf "$dist"/covalent_slurm-*.tar.gz -C "$dist/sdist"
cd "$dist"/sdist/covalent_slurm-*/
"$venv/bin/python" - <<'PY'
import importlib.util
from covalent_core.errors import ExecutorConfigError
from covalent_slurm import SlurmExecutor
assert importlib.util.find_spec("covalent_ssh") is None
try:
    SlurmExecutor(address="login.example.org")
except ExecutorConfigError as exc:
    assert "covalent-slurm[ssh]" in str(exc), exc
    print("over SSH without covalent-ssh:", exc)
else:
    raise SystemExit("SlurmExecutor(address=...) was accepted without covalent-ssh")
PY
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_slurm.py \
  -k "golden or one_letter or runs_in_remote_workdir or bad_option or exit_code"
