#!/usr/bin/env bash
# The whole test suite: the README's test command. Runs from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
export ROCMFORGE_MODELS="${ROCMFORGE_MODELS:-$(cd .. && pwd)/shared/models}"

# The server is also tested with the official openai npm client when Node is here.
if command -v npm >/dev/null 2>&1; then
  echo "== npm ci (server/testdata/node: the openai npm client)"
  (cd server/testdata/node && npm ci --no-audit --no-fund --loglevel=error)
  export ROCMFORGE_NODE_TEST=1
elif [ "${ROCMFORGE_REQUIRE_NODE:-}" = 1 ]; then
  echo "test.sh: npm is missing, so the Node client test cannot run" >&2
  exit 1
else
  echo "== npm not found: the Node client test will be skipped"
fi

go test -count=1 -timeout 45m ./...
