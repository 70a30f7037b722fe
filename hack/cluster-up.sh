#!/usr/bin/env bash
# Starts the local test cluster (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok with one fake Node) on 127.0.0.1 and prints the path of
# its admin kubeconfig, by default
#   ${FERRY_CLUSTER_DIR:-${FERRY_CACHE:-$HOME/.cache/ferry}/cluster}/kubeconfig
# Safe to re-run: a running cluster is detected and left alone.
# Builds the binaries first when they are missing (hack/testbin.sh).
# Extra arguments go to the cluster command, e.g. -timeout 5m.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
hack/testbin.sh >/dev/null
exec go run ./hack/cluster "$@" up
