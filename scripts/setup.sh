#!/usr/bin/env bash
# Create .venv (if needed) and install covalent-core with its test tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
log=$(mktemp)
if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".[test]" -e "testing/pytest-covalent-servers[braket]" -e examples/covalent-workdir $(for p in plugins/covalent-*/; do printf -- "-e %s[test] " "${p%/}"; done); } >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
rm -f "$log"
