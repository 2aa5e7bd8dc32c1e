#!/usr/bin/env bash
# Set up .venv and run every check: lint, format, types, tests on both backends, coverage.
source "$(dirname "$0")/_venv.sh"
# Node's ws package for the interop tests, when npm is here (cheap, git-ignored,
# no lock file). Chromium is installed by .ci/run only (it needs root).
if command -v npm >/dev/null && [ ! -f tests/interop/node/node_modules/ws/package.json ]; then
    npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
        --prefix tests/interop/node ws@8 >/dev/null ||
        echo "npm install ws@8 failed: the Node interop tests will skip (or fail if CI=true)" >&2
fi
set -x
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/coverage erase
.venv/bin/coverage run -m pytest "$@"
.venv/bin/coverage combine --quiet
# The sans-I/O core is held to 100 % branch coverage, the whole package to 95 %.
.venv/bin/coverage report --include='anyws/sansio/*,anyws/exceptions.py,anyws/uri.py' --fail-under=100
.venv/bin/coverage report --fail-under=95
