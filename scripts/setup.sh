#!/usr/bin/env bash
# Create .venv (if needed) and install covalent-core with its test tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# A plugin whose dependencies cannot share an environment with another's has a venv of its
# own, .venv-NAME (covalent-dask: dask needs cloudpickle>=3, amazon-braket-sdk pins 2.2.1).
OWN_VENV="covalent-dask"
own_venv() { local name; name=$(basename "$1"); [[ " $OWN_VENV " == *" $name "* ]]; }
log=$(mktemp)
if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".[test]" -e "testing/pytest-covalent-servers[braket]" -e examples/covalent-workdir $(for p in plugins/covalent-*/; do own_venv "$p" || printf -- "-e %s[test] " "${p%/}"; done); } >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
rm -f "$log"
for name in $OWN_VENV; do
  if [ ! -x ".venv-$name/bin/python" ]; then
    "$PY" -m venv ".venv-$name"
  fi
  if ! { ".venv-$name/bin/python" -m pip install -q --upgrade pip && ".venv-$name/bin/python" -m pip install -q -e ".[test]" -e testing/pytest-covalent-servers -e "plugins/$name[test]"; } >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
done
rm -f "$log"
