#!/usr/bin/env bash
# The whole test suite: the README's test command. Runs from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
export ROCMFORGE_MODELS="${ROCMFORGE_MODELS:-$(cd .. && pwd)/shared/models}"
go test -count=1 -timeout 45m ./...
