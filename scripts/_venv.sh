# Sourced by scripts/run.sh and scripts/test.sh: make .venv and install anyws into it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[trio,test]" 2>&1 \
    | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import anyio, trio, anyws" # fail early if the install did not work
