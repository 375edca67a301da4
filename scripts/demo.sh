#!/usr/bin/env bash
# Set up and run the demo: dispatch a workflow, cancel part of it, print the status table.
# It needs covalent-core alone (SQLite, the local executor): .venv-demo holds just that.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import ensurepip' 2>/dev/null; then  # Debian splits venv out of python3
  (apt-get update -qq && apt-get install -y -qq python3-venv) >/dev/null
fi
if [ ! -x .venv-demo/bin/python ]; then
  "$PY" -m venv .venv-demo
fi
log=$(mktemp)
if ! .venv-demo/bin/python -m pip install -q -e . >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
rm -f "$log"
exec .venv-demo/bin/python examples/demo.py "$@"
