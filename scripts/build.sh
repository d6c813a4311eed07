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
# The WASM, JS and CSS first, then the server with them compiled in (feature `embed-site`,
# server/src/site.rs): target/release/lantern then runs from any directory on its own.
# (One `cargo leptos build` would build both at once, so the server could embed a stale site.)
cargo leptos build --release --frontend-only
cargo leptos build --release --server-only --bin-features embed-site
mv "$started" "$stamp"
