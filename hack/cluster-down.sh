#!/usr/bin/env bash
# Stops the local test cluster started by hack/cluster-up.sh: each component
# by its PID file, kwok first and etcd last. Keeps the logs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
exec go run ./hack/cluster "$@" down
