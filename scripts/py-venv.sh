#!/usr/bin/env bash
# The Python environment the example agents and the SDK's tests run in, in target/py-venv:
# examples/requirements.txt, then the SDK (sdk/python) installed from its source as a user
# would (`pip install ./sdk/python`). Each part is skipped when it is already there as it is
# now. The tests that run the examples call this, and so do scripts/setup.sh --test and
# scripts/test.sh. Prints the interpreter path.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/target/py-venv"
REQS="$ROOT/examples/requirements.txt"
SDK="$ROOT/sdk/python"
STAMP="$VENV/.lantern-requirements"
SDK_STAMP="$VENV/.lantern-sdk"
if ! [ -x "$VENV/bin/python" ] || ! cmp -s "$STAMP" "$REQS"; then
  echo "[py-venv] creating $VENV" >&2
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS" >&2
  cp "$REQS" "$STAMP"
  rm -f "$SDK_STAMP"
fi
# The SDK's source, as one fingerprint: a change to it reinstalls the package.
sdk_now=$(cd "$SDK" && find pyproject.toml README.md src/lantern -type f ! -path '*__pycache__*' \
  | LC_ALL=C sort | xargs sha256sum | sha256sum)
if [ "$(cat "$SDK_STAMP" 2>/dev/null)" != "$sdk_now" ]; then
  echo "[py-venv] installing the SDK from $SDK" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps \
    "$SDK" >&2
  echo "$sdk_now" > "$SDK_STAMP"
fi
echo "$VENV/bin/python"
