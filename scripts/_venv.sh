# Sourced by scripts/reproduce and scripts/test: make sure .venv exists with paperlib installed
# (editable, with the dev extra), reinstalling whenever pyproject.toml changes. Sets $VENV_PY.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PAPERLIB_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
EXTRAS="${PAPERLIB_EXTRAS:-dev}"  # e.g. PAPERLIB_EXTRAS=dev,cuda on a machine with an NVIDIA GPU

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "paperlib needs Python 3.11 or newer; '$PYTHON' is $("$PYTHON" --version 2>&1)." >&2
    echo "Point PYTHON at a newer interpreter, e.g. PYTHON=python3.12 $0" >&2
    exit 1
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
want="$("$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read() + sys.argv[2].encode()).hexdigest())' "$ROOT/pyproject.toml" "$EXTRAS")"
if [ "$(cat "$VENV/.paperlib-installed" 2>/dev/null)" != "$want" ]; then
    echo "Installing paperlib and its dependencies into $VENV (first run only) ..." >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[$EXTRAS]"
    echo "$want" > "$VENV/.paperlib-installed"
fi
VENV_PY="$VENV/bin/python"
