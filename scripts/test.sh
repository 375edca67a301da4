#!/usr/bin/env bash
# Set up and run every test: the core (with the example plugin), then each executor plugin
# against its real server, started by its own tests. Fails if any test fails or none ran.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/setup.sh
CLOUDPICKLE_VERSION=$(.venv/bin/python -c "import cloudpickle; print(cloudpickle.__version__)") \
  testing/pytest-covalent-servers/pytest_covalent_servers/install.sh
.venv/bin/ruff check covalent_core tests benchmarks examples plugins noxfile.py

status=0
# Each test has its own bound (pytest-timeout, in pyproject.toml); each stage has this one, so
# that nothing can stall the whole run.
STAGE_LIMIT=${STAGE_LIMIT:-1200}
run_pytest() {
  local code=0
  timeout --kill-after=60 "$STAGE_LIMIT" "${PYTHON_BIN:-$ROOT/.venv/bin/python}" -m pytest "$@" || code=$?
  if [ "$code" -eq 5 ]; then
    echo "pytest collected no tests in $PWD: failing on purpose" >&2
    code=1
  elif [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
    echo "tests in $PWD ran longer than ${STAGE_LIMIT} s: stopped" >&2
  fi
  return "$code"
}
run_plugin() {
  local plugin=${1%/} own
  shift
  echo "== $plugin"
  # A plugin with a venv of its own (scripts/setup.sh) is tested in it.
  own="$ROOT/.venv-$(basename "$plugin")/bin/python"
  [ -x "$own" ] || own="$ROOT/.venv/bin/python"
  (cd "$plugin" && PYTHON_BIN="$own" run_pytest "$@")
}
# Three lanes side by side; each suite starts its own servers on free ports, in its own data
# directory. The plugin lanes mostly wait on their servers; the core lane runs its tests in
# two processes (pytest-xdist), on SQLite, then on a throwaway PostgreSQL cluster (started
# by its conftest).
SSH_LANE="covalent-slurm covalent-ssh"
ssh_log=$(mktemp)
(
  lane=0
  # Graphs and values against real Covalent 0.240, on a new random seed each run.
  echo "== covalent 0.240 differential"
  "$ROOT/.venv/bin/python" tests/compat/reference.py --count 200 --run 10 || lane=1
  for name in $SSH_LANE; do
    run_plugin "plugins/$name" "$@" || lane=1
  done
  exit "$lane"
) >"$ssh_log" 2>&1 &
ssh_pid=$!
other_log=$(mktemp)
(
  lane=0
  for plugin in plugins/covalent-*/; do
    [[ " $SSH_LANE " == *" $(basename "$plugin") "* ]] && continue
    run_plugin "$plugin" "$@" || lane=1
  done
  exit "$lane"
) >"$other_log" 2>&1 &
other_pid=$!
echo "== core on SQLite"
run_pytest tests -n 2 "$@" || status=1
echo "== core on PostgreSQL"
COVALENT_CORE_TEST_STORE=postgresql run_pytest tests -n 2 "$@" || status=1
wait "$ssh_pid" || status=1
cat "$ssh_log"
wait "$other_pid" || status=1
cat "$other_log"
rm -f "$ssh_log" "$other_log"
# Every package builds, passes twine check, and works installed from its wheel alone.
echo "== packages"
scripts/check-packages.sh || status=1
exit "$status"
