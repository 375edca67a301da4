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
run_pytest "$@" || status=1
# The core suite again on a throwaway PostgreSQL cluster (started by its conftest), beside the
# plugin suites below, which mostly wait on their servers.
pg_log=$(mktemp)
(COVALENT_CORE_TEST_STORE=postgresql run_pytest tests "$@" >"$pg_log" 2>&1) &
pg_pid=$!
# Graphs and values against real Covalent 0.240, on a new random seed each run.
echo "== covalent 0.240 differential"
"$ROOT/.venv/bin/python" tests/compat/reference.py --count 200 --run 10 || status=1
run_plugin() {
  local plugin=${1%/} own
  shift
  echo "== $plugin"
  # A plugin with a venv of its own (scripts/setup.sh) is tested in it.
  own="$ROOT/.venv-$(basename "$plugin")/bin/python"
  [ -x "$own" ] || own="$ROOT/.venv/bin/python"
  (cd "$plugin" && PYTHON_BIN="$own" run_pytest "$@")
}
# The plugin suites in two lanes side by side (each suite starts its own servers on free
# ports, in its own data directory): the SSH-based ones here, the others in the background.
SSH_LANE="covalent-slurm covalent-ssh"
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
for name in $SSH_LANE; do
  run_plugin "plugins/$name" "$@" || status=1
done
wait "$other_pid" || status=1
cat "$other_log"
rm -f "$other_log"
echo "== core on PostgreSQL"
wait "$pg_pid" || status=1
cat "$pg_log"
rm -f "$pg_log"
# Every package builds, passes twine check, and works installed from its wheel alone.
echo "== packages"
scripts/check-packages.sh || status=1
exit "$status"
