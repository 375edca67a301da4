#!/usr/bin/env bash
# Set up and run the demo: dispatch a workflow, cancel part of it, print the status table.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python examples/demo.py "$@"
