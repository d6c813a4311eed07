#!/usr/bin/env bash
# The Python environment the example agents run in (examples/requirements.txt), in
# target/py-venv; skipped when it is already there with the same requirements. The tests that
# run the examples call this, and so does scripts/setup.sh --test. Prints the interpreter path.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/target/py-venv"
REQS="$ROOT/examples/requirements.txt"
STAMP="$VENV/.lantern-requirements"
if ! [ -x "$VENV/bin/python" ] || ! cmp -s "$STAMP" "$REQS"; then
  echo "[py-venv] creating $VENV" >&2
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS" >&2
  cp "$REQS" "$STAMP"
fi
echo "$VENV/bin/python"
