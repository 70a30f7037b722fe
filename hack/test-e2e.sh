#!/usr/bin/env bash
# Runs the end-to-end tests: brings a fresh local cluster up (in its own run
# folder, not the one of cluster-up), runs go test -tags e2e ./test/e2e/...
# and brings the cluster down. Arguments go to go test, e.g. -run NAME -v.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
hack/testbin.sh >/dev/null
exec go test -tags e2e -count=1 -timeout 30m "$@" ./test/e2e/...
