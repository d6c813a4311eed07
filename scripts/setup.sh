#!/usr/bin/env bash
# Installs what building and testing Lantern needs, skipping whatever is already there.
#
#   scripts/setup.sh          toolchain for building and running (rust target, cargo-leptos,
#                             wasm-bindgen-cli, wasm-opt from npm)
#   scripts/setup.sh --test   also what the tests need (Debian chromium and redis-server,
#                             Playwright, the Python packages of examples/ in target/py-venv)
#
# Safe to run again: each step checks first. Works with no terminal (CI).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

LEPTOS_VERSION=0.3.11
# Must equal the wasm-bindgen version pinned in Cargo.toml / Cargo.lock, exactly.
WASM_BINDGEN_VERSION=0.2.130

WANT_TEST=0
[ "${1:-}" = "--test" ] && WANT_TEST=1

export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export PATH="$CARGO_HOME/bin:$PATH"

log() { printf '[setup] %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_wasm_target() {
  if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "wasm32-unknown-unknown target: present"
  else
    log "adding rust target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
}

# cargo-leptos 0.3.11's own lock file pins a crate that needs a newer rustc than stable here
# (see shared TOOLCHAIN.md, trap 2): unpack it, step that crate back one patch, install locked.
ensure_cargo_leptos() {
  if cargo-leptos --version 2>/dev/null | grep -q "$LEPTOS_VERSION"; then
    log "cargo-leptos $LEPTOS_VERSION: present"
    return
  fi
  log "installing cargo-leptos $LEPTOS_VERSION (compiles for several minutes)"
  local src
  src=$(ls -d "$CARGO_HOME"/registry/src/*/cargo-leptos-$LEPTOS_VERSION 2>/dev/null | head -n1 || true)
  if [ -z "$src" ]; then
    # Unpacks the source into the registry cache; the build itself is expected to fail here.
    cargo install cargo-leptos --version "$LEPTOS_VERSION" --locked >/dev/null 2>&1 || true
    src=$(ls -d "$CARGO_HOME"/registry/src/*/cargo-leptos-$LEPTOS_VERSION 2>/dev/null | head -n1 || true)
  fi
  if [ -z "$src" ]; then
    log "could not fetch cargo-leptos $LEPTOS_VERSION source"; exit 1
  fi
  local work
  work=$(mktemp -d)
  cp -r "$src" "$work/cargo-leptos"
  (
    cd "$work/cargo-leptos"
    cargo update -p cargo-util-schemas --precise 0.14.1
    # Unoptimised: cargo-leptos only starts cargo, wasm-bindgen and wasm-opt, bundles a 13 KB
    # stylesheet and minifies a 23 KB script, so its speed does not show; compiling its 600
    # crates optimised was the longest step of a fresh machine's CI. On 2 cores: 208 s at
    # opt-level 0, 442 s at 1, 496 s at 3; the site it built was byte for byte the same.
    CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
      CARGO_PROFILE_RELEASE_OPT_LEVEL=0 cargo install --path . --locked
  )
  rm -rf "$work"
}

ensure_wasm_bindgen() {
  if wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
    log "wasm-bindgen-cli $WASM_BINDGEN_VERSION: present"
  else
    log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
    # Not --locked: a locked dependency is missing from the registry (TOOLCHAIN.md trap 4).
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
  fi
}

# npm packages of end2end/: Playwright, and binaryen's wasm-opt which cargo-leptos needs for
# release builds (Debian's wasm-opt is too old and breaks hydration: TOOLCHAIN.md trap 5).
ensure_npm_packages() {
  local stamp="$ROOT/end2end/node_modules/.lantern-lock"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$ROOT/end2end/package-lock.json"; then
    log "end2end npm packages: present"
    return
  fi
  log "installing end2end npm packages"
  (cd "$ROOT/end2end" && npm ci --no-audit --no-fund)
  cp "$ROOT/end2end/package-lock.json" "$stamp"
}

ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then
    log "chromium: present"
    return
  fi
  log "installing Debian chromium"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
}

# The Redis store's tests start redis-servers of their own, on free ports of 127.0.0.1: only the
# binary is needed. Whether the package's service runs (apt starts it on 6379 where the system
# allows, e.g. not in a container with a policy-rc.d) does not matter; no test uses it.
ensure_redis_server() {
  if command -v redis-server >/dev/null 2>&1; then
    log "redis-server: present ($(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p'))"
    return
  fi
  log "installing Debian redis-server"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
}

ensure_wasm_target
ensure_wasm_bindgen
ensure_npm_packages
ensure_cargo_leptos
if [ "$WANT_TEST" = 1 ]; then
  ensure_chromium
  ensure_redis_server
  log "python environment for the example agents: $(bash "$ROOT/scripts/py-venv.sh")"
fi
log "done"
