#!/usr/bin/env bash
# The server under test: the release build on an empty data dir (so it is a first start and
# prints the admin's login URL), with what it prints kept in .data/server.out for the tests
# to read (tests/session.ts). Arguments go to `lantern serve`.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf .data
mkdir -p .data
exec ../target/release/lantern serve "$@" > >(tee .data/server.out)
