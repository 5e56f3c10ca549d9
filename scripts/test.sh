#!/usr/bin/env bash
# Install ogc-upscaler with its test extras into .venv and run the linter and the whole test suite.
# The README's test command and CI (.ci/run) both run exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e '.[test]' -e app_packages/ndvi
ruff check .
ruff format --check .
python -m pytest "$@"
