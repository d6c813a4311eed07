#!/usr/bin/env bash
# Release build of Lantern (server binary + WASM + CSS), skipped when no source changed since
# the last successful build: cargo-leptos re-runs wasm-bindgen and wasm-opt on every build,
# which costs most of a minute even when nothing changed.
# Expects scripts/setup.sh to have run (cargo-leptos, wasm-bindgen, wasm-opt on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=target/.release-build-stamp
sources=(Cargo.toml Cargo.lock app server frontend style public)
if [ -f "$stamp" ] && [ -x target/release/lantern ] &&
   [ -z "$(find "${sources[@]}" -newer "$stamp" -print -quit)" ]; then
  echo "[build] release build is up to date"
  exit 0
fi
# The stamp takes the time the build started: a source saved during the build is newer than
# it, so the next run builds again.
mkdir -p target
started=$(mktemp target/.release-build-started.XXXXXX)
cargo leptos build --release
mv "$started" "$stamp"
