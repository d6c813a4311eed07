#!/usr/bin/env bash
# Set up what is missing, build Lantern (release), and run it on 127.0.0.1:3000.
# Extra arguments go to `lantern serve` (e.g. --addr 127.0.0.1:8080 --data-dir ./data).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
# wasm-opt for release builds comes from end2end's npm packages (see scripts/setup.sh).
export PATH="$CARGO_HOME/bin:$PWD/end2end/node_modules/.bin:$PATH"

bash scripts/build.sh
# The pages, WASM and CSS are inside the binary (see scripts/build.sh).
exec ./target/release/lantern serve "$@"
