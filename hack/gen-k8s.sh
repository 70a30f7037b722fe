#!/usr/bin/env bash
# Regenerates deepcopy code and CRD manifests from api/, and the installer's
# ClusterRole from the +kubebuilder:rbac markers next to the code that needs
# each permission, with a pinned controller-gen.
set -euo pipefail
cd "$(dirname "$0")/.."

CONTROLLER_TOOLS_VERSION="${CONTROLLER_TOOLS_VERSION:-v0.23.0}"
TOOLS_DIR="${FERRY_CACHE:-$HOME/.cache/ferry}/tools"
gen="$TOOLS_DIR/controller-gen-$CONTROLLER_TOOLS_VERSION"
if [ ! -x "$gen" ]; then
  echo "building controller-gen $CONTROLLER_TOOLS_VERSION into $TOOLS_DIR (once)"
  mkdir -p "$TOOLS_DIR/gobin-controller-gen"
  GOBIN="$TOOLS_DIR/gobin-controller-gen" go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION"
  mv "$TOOLS_DIR/gobin-controller-gen/controller-gen" "$gen"
fi
"$gen" object:headerFile=hack/boilerplate.go.txt paths=./api/...
rm -f config/crd/bases/*.yaml
"$gen" crd paths=./api/... output:crd:artifacts:config=config/crd/bases
# The installer's ClusterRole: every marker in the installer's packages.
# config/rbac/role.yaml stays a single plain ClusterRole document.
"$gen" rbac:roleName=ferry-installer paths=./cmd/installer/... paths=./internal/... output:rbac:artifacts:config=config/rbac
echo "generated: api/v1alpha1/zz_generated.deepcopy.go $(ls config/crd/bases/*.yaml | tr '\n' ' ')config/rbac/role.yaml"
