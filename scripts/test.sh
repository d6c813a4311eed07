#!/usr/bin/env bash
# Set up what is missing, then run every test: Rust unit and integration tests (real server,
# real sockets), the Python SDK's tests (the same) and the Playwright end-to-end tests (release
# build, Debian chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$(pwd)

bash scripts/setup.sh --test
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export PATH="$CARGO_HOME/bin:$PWD/end2end/node_modules/.bin:$PATH"

echo "== the vendored renderer patch is in use (vendor/README.md)"
# Cargo ignores a [patch] that no longer matches the version Leptos asks for, with a mere
# warning; the WASM would then silently lose what the patch saves.
if ! cargo tree --locked -e normal -i tachys --depth 0 | grep -q "vendor/tachys"; then
  echo "vendor/tachys is not in the build: a Leptos update changed tachys's version." >&2
  echo "Re-apply vendor/tachys-no-async-hydration.patch to the new version, or drop it (vendor/README.md)." >&2
  exit 1
fi

echo "== cargo test"
cargo test --workspace --locked

echo "== the Python SDK (sdk/python): pytest against the lantern binary cargo test just built"
PYTHON=$(bash scripts/py-venv.sh)
(cd sdk/python && LANTERN_BIN="$ROOT_DIR/target/debug/lantern" "$PYTHON" -m pytest -q -p no:cacheprovider)

echo "== release build (cargo leptos build --release)"
bash scripts/build.sh

echo "== benchmark smoke run (bench/: seconds; fails only if an event is lost or reordered)"
cargo run --locked --quiet -p lantern-bench -- --quick --out target/bench-smoke.md

echo "== playwright"
cd end2end
npx playwright test   # its server (end2end/serve.sh) starts on an empty data dir
