#!/usr/bin/env bash
# Runs the tests of every package whose tests import internal/testenv, i.e.
# that start a real kube-apiserver and etcd. Arguments go to go test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$(hack/testbin.sh --print-dir)}"
testenv="$(go list -m)/internal/testenv"
mapfile -t pkgs < <(go list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... |
	awk -v p="${testenv}" '{ for (i = 2; i <= NF; i++) if ($i == p) { print $1; break } }')
if [[ ${#pkgs[@]} -eq 0 ]]; then
	echo "test-envtest: no package imports ${testenv} in its tests" >&2
	exit 0
fi
echo "test-envtest: KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS}" >&2
exec go test -count=1 "$@" ./internal/testenv/... "${pkgs[@]}"
