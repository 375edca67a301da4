#!/usr/bin/env bash
# Set up and run the benchmarks: prints a table, writes benchmarks/results/latest.json.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
CLOUDPICKLE_VERSION=$(.venv/bin/python -c "import cloudpickle; print(cloudpickle.__version__)") \
  testing/pytest-covalent-servers/pytest_covalent_servers/install.sh
exec .venv/bin/python benchmarks/run.py "$@"
