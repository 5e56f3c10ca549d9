#!/usr/bin/env bash
# Install ogc-upscaler into .venv and run the demo campaign end to end in ./demo.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e . -e app_packages/ndvi
bash scripts/web.sh || echo "scripts/demo.sh: the watch page was not built (see above); the demo runs without it" >&2
ogc-upscaler demo demo
