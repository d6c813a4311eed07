#!/usr/bin/env bash
# The server under test: the release build (site embedded) on an empty data dir (so it is a first start and
# prints the admin's login URL), with what it prints kept in .data/server.out for the tests
# to read (tests/session.ts). Arguments go to `lantern serve`.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf .data
mkdir -p .data
# A copy of the binary, run from a directory with nothing else in it and a site root that does
# not exist: every page, script and stylesheet the tests load comes from inside the binary.
mkdir -p .data/alone
cp ../target/release/lantern .data/alone/lantern
cd .data/alone
exec ./lantern serve --site-root "$PWD/no-site-here" "$@" > >(tee ../server.out)
