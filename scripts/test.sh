#!/usr/bin/env bash
# Install ogc-upscaler with its test extras into .venv and run the linter and the whole test suite.
# The README's test command and CI (.ci/run) both run exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
# Node.js runs the JavaScript expressions of application packages (cwltool asks for it); Debian's nodejs
if ! command -v node >/dev/null && ! command -v nodejs >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs >/dev/null 2>&1 || {
            apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs >/dev/null
        }
    else
        echo "scripts/test.sh: Node.js is missing; install Debian's nodejs (apt-get install nodejs)" >&2
    fi
fi
# Chromium for the watch page's browser tests (Playwright drives Debian's build; it downloads none)
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || {
            apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null
        }
    else
        echo "scripts/test.sh: Chromium is missing; install Debian's chromium (apt-get install chromium)" >&2
    fi
fi
# PostgreSQL 15 with PostGIS for the tests' STAC API with transactions (stac-fastapi-pgstac, migrated by pypgstac)
if [ ! -x /usr/lib/postgresql/15/bin/initdb ] || [ ! -d /usr/share/postgresql/15/extension ] \
        || ! ls /usr/share/postgresql/15/extension/postgis.control >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql postgresql-15-postgis-3 >/dev/null 2>&1 || {
            apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql postgresql-15-postgis-3 >/dev/null
        }
    else
        echo "scripts/test.sh: PostgreSQL/PostGIS are missing; install Debian's postgresql postgresql-15-postgis-3" >&2
    fi
fi
bash scripts/web.sh
# The tests' S3-compatible server (ministack, signatures checked) in a venv of its own: it pins a botocore
# that Toil's does not take (why this server: ../shared/notes/s3-and-stac-api.md, and tests/conftest.py)
python3 -m venv .venv-s3
.venv-s3/bin/python -m pip install --quiet --upgrade pip
.venv-s3/bin/python -m pip install --quiet ministack==1.5.33 boto3
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e '.[test]' -e app_packages/ndvi
ruff check .
ruff format --check .
python -m pytest "$@"
