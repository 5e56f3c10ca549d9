#!/usr/bin/env bash
# Install ogc-upscaler into .venv and run the demo campaign end to end in ./demo.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e . -e app_packages/ndvi
ogc-upscaler demo demo
