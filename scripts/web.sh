#!/usr/bin/env bash
# Build the watch page's script and basemap into ogc_upscaler/watch/static/build (npm packages from
# web/package-lock.json: d3-geo, topojson-client, Natural Earth's world-atlas, esbuild).
# scripts/test.sh and scripts/demo.sh run it; run it again after changing web/src.
set -euo pipefail
cd "$(dirname "$0")/../web"
if ! command -v npm >/dev/null; then
    echo "scripts/web.sh: npm is missing; install Debian's nodejs and npm (apt-get install nodejs npm)" >&2
    exit 1
fi
npm ci --no-audit --no-fund --loglevel=error >/dev/null
node build.mjs >/dev/null
