#!/usr/bin/env bash
# Runs every test: unit, deterministic simulation, kcptun interop and network-namespace tests.
# Expects `bin/setup` to have run (the README's test command does both).
set -euo pipefail
cd "$(dirname "$0")/.."
# Lint first (eslint.config.js: the house rules; about 20 s of CPU), then build.
npx eslint .
npx tsc -p tsconfig.json
# Only *.test.js files are tests (fixtures and harness modules live beside them).
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
# Namespaced tests share device names and ports; run files one at a time.
exec node --test --test-concurrency=1 "${files[@]}"
