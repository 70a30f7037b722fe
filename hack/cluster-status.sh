#!/usr/bin/env bash
# Shows which components of the local test cluster are running.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
exec go run ./hack/cluster "$@" status
