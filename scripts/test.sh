#!/usr/bin/env bash
# Set up and run every test of covalent-core. Exits non-zero if any test fails or none ran.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check covalent_core tests benchmarks examples noxfile.py
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$code"
