#!/usr/bin/env bash
# Deploys Ferry (config/default, or the Helm chart charts/ferry) and its samples
# (config/samples) with kubectl.
#
#   hack/deploy.sh deploy            apply config/default (or the chart), wait for the Deployments
#   hack/deploy.sh undeploy          remove the samples' Subscriptions and CatalogSources, then Ferry
#   hack/deploy.sh deploy-samples    apply config/samples
#   hack/deploy.sh undeploy-samples  delete config/samples
#   hack/deploy.sh render            print the manifests deploy applies (DEPLOY_WITH, images, HELM_VALUES)
#
# Environment:
#   KUBECONFIG        cluster to use (default: the local cluster of make cluster-up,
#                     ${FERRY_CACHE:-~/.cache/ferry}/cluster/kubeconfig)
#   DEPLOY_WITH       kustomize (default: config/default, rendered by kubectl kustomize) or
#                     helm (charts/ferry, rendered by helm template as release "ferry" in
#                     ferry-system, after the Namespace of config/default)
#   DEPLOY_OVERLAY    DEPLOY_WITH=kustomize only: the folder of config/ to render (default
#                     default; publishing: catalogd with TLS, publishing and the claim
#                     catalogd-data, given the Secrets catalogd-tls and catalogd-publish-tokens)
#   HELM              helm binary for DEPLOY_WITH=helm (default: bin/helm, from make helm)
#   HELM_VALUES       DEPLOY_WITH=helm only: a values file for the chart (e.g. TLS, publishing)
#   IMG_INSTALLER     installer image (default ghcr.io/ferrydev/ferry/installer:v0.1.0)
#   IMG_CATALOGD      catalogd image (default ghcr.io/ferrydev/ferry/catalogd:v0.1.0)
#   CATALOG_ADDRESS   deploy-samples only: address for the sample CatalogSource instead of
#                     catalogd.ferry-system.svc:50051 (e.g. 127.0.0.1:50051 for a catalogd
#                     running on this machine)
#   CATALOG_CA_SECRET deploy-samples only: the sample CatalogSource speaks TLS and trusts
#                     ca.crt of this Secret in ferry-system (e.g. catalogd-tls) instead of
#                     plaintext to a catalogd on loopback
#   DEPLOY_TIMEOUT    how long deploy waits for the Deployments (default 180s)
#   DEPLOY_TARGET     local: the installer and catalogd run as processes on this machine,
#                     as their Deployments would run them (hack/asdeployed; the local
#                     cluster's kwok node runs no containers); cluster: apply everything and
#                     wait for the Deployments. Default: local when KUBECONFIG is the local
#                     cluster's, else cluster.
#   FERRY_DEPLOY_DIR  local target: logs and PID files of the two processes, their volumes and
#                     the installer's kubeconfig (default ${FERRY_CACHE:-~/.cache/ferry}/deploy)
#   DEPLOY_LOCAL_FLAGS local target: more flags for hack/asdeployed up, e.g. other listen
#                     addresses (-catalogd-listen 127.0.0.1:50052; then set CATALOG_ADDRESS too)
# See docs/deploy.md.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ns=ferry-system
default_installer=ghcr.io/ferrydev/ferry/installer
default_catalogd=ghcr.io/ferrydev/ferry/catalogd

local_kubeconfig="${FERRY_CLUSTER_DIR:-${FERRY_CACHE:-$HOME/.cache/ferry}/cluster}/kubeconfig"
export KUBECONFIG="${KUBECONFIG:-$local_kubeconfig}"
if [[ -z "${DEPLOY_TARGET:-}" ]]; then
	DEPLOY_TARGET=cluster
	[[ "$(realpath -m "$KUBECONFIG")" == "$(realpath -m "$local_kubeconfig")" ]] && DEPLOY_TARGET=local
fi
case "$DEPLOY_TARGET" in
local | cluster) ;;
*) echo "deploy: error: DEPLOY_TARGET=$DEPLOY_TARGET: want local or cluster" >&2; exit 1 ;;
esac
# The local target serves the catalog here; the sample CatalogSource points at it.
[[ "$DEPLOY_TARGET" == local ]] && CATALOG_ADDRESS="${CATALOG_ADDRESS:-127.0.0.1:50051}"
timeout="${DEPLOY_TIMEOUT:-180s}"
deploy_with="${DEPLOY_WITH:-kustomize}"
overlay="${DEPLOY_OVERLAY:-default}"

die() { echo "deploy: error: $*" >&2; exit 1; }
say() { echo "deploy: $*"; }

case "$deploy_with" in
kustomize | helm) ;;
*) die "DEPLOY_WITH=$deploy_with: want kustomize or helm" ;;
esac
[[ "$overlay" != */* && "$overlay" != .* && -f "$root/config/$overlay/kustomization.yaml" ]] ||
	die "DEPLOY_OVERLAY=$overlay: no kustomization in config/$overlay (e.g. default, publishing)"
[[ "$overlay" == default || "$deploy_with" == kustomize ]] ||
	die "DEPLOY_OVERLAY=$overlay is for DEPLOY_WITH=kustomize; the chart takes HELM_VALUES"

command -v kubectl >/dev/null || die "kubectl not found in PATH"
# render needs no cluster.
[[ "${1:-}" == render || -f "${KUBECONFIG%%:*}" ]] || die "no kubeconfig at ${KUBECONFIG} (run make cluster-up, or set KUBECONFIG)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-deploy.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# render_default writes Ferry's manifests to stdout, from config/default or
# from the chart (DEPLOY_WITH).
render_default() {
	case "$deploy_with" in
	kustomize) render_kustomize ;;
	helm) render_helm ;;
	esac
}

# render_helm writes the chart rendered by helm template, with the images
# from IMG_INSTALLER and IMG_CATALOGD and the values of HELM_VALUES, after
# the Namespace of config/default: the chart leaves the namespace to
# `helm install --create-namespace`, which cannot label it.
render_helm() {
	local helm=${HELM:-$root/bin/helm}
	[[ -x "$helm" ]] || die "no helm at $helm (run make helm, or set HELM)"
	local args=(template ferry "$root/charts/ferry" --namespace "$ns")
	if [[ -n "${HELM_VALUES:-}" ]]; then
		[[ -f "$HELM_VALUES" ]] || die "HELM_VALUES=$HELM_VALUES: no such file"
		args+=(--values "$HELM_VALUES")
	fi
	for pair in "installer=${IMG_INSTALLER:-}" "catalogd=${IMG_CATALOGD:-}"; do
		local component=${pair%%=*} img=${pair#*=}
		[[ -n "$img" ]] || continue
		local repo=$img tag="" digest=""
		case "$img" in
		*@*) repo=${img%%@*} digest=${img#*@} ;;
		*:*) [[ "${img##*:}" == */* ]] || { repo=${img%:*} tag=${img##*:}; } ;;
		esac
		args+=(--set-string "$component.image.repository=$repo" --set-string "$component.image.tag=$tag" --set-string "$component.image.digest=$digest")
	done
	cat "$root/config/default/namespace.yaml"
	echo "---"
	"$helm" "${args[@]}"
}

# render_kustomize writes config/$DEPLOY_OVERLAY (default config/default)
# with the images from IMG_INSTALLER and IMG_CATALOGD, through a
# kustomization in a temporary folder so that the committed one is never
# edited.
render_kustomize() {
	if [[ -z "${IMG_INSTALLER:-}" && -z "${IMG_CATALOGD:-}" ]]; then
		kubectl kustomize "$root/config/$overlay"
		return
	fi
	{
		echo "apiVersion: kustomize.config.k8s.io/v1beta1"
		echo "kind: Kustomization"
		echo "resources:"
		echo "- $(relative "config/$overlay")"
		echo "images:"
		for pair in "$default_installer=${IMG_INSTALLER:-}" "$default_catalogd=${IMG_CATALOGD:-}"; do
			local name=${pair%%=*} img=${pair#*=}
			[[ -n "$img" ]] || continue
			echo "- name: $name"
			case "$img" in
			*@*) echo "  newName: ${img%%@*}"; echo "  digest: ${img#*@}" ;;
			*:*) [[ "${img##*:}" == */* ]] && { echo "  newName: $img"; continue; }
				echo "  newName: ${img%:*}"; echo "  newTag: ${img##*:}" ;;
			*) echo "  newName: $img" ;;
			esac
		done
	} >"$tmp/kustomization.yaml"
	kubectl kustomize "$tmp"
}

render_samples() {
	if [[ -z "${CATALOG_ADDRESS:-}" && -z "${CATALOG_CA_SECRET:-}" ]]; then
		kubectl kustomize "$root/config/samples"
		return
	fi
	cat >"$tmp/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- $(relative config/samples)
patches:
- target: {group: operators.ferry.dev, kind: CatalogSource, name: ferry-samples}
  patch: |-
$(address_patch)
$(tls_patch)
YAML
	kubectl kustomize "$tmp"
}

address_patch() {
	[[ -n "${CATALOG_ADDRESS:-}" ]] || return 0
	printf '%s\n' '    - op: replace' '      path: /spec/address' "      value: \"$CATALOG_ADDRESS\""
}

# tls_patch asks for TLS with the CA of CATALOG_CA_SECRET, or for plaintext
# when CATALOG_ADDRESS is on loopback, where catalogd serves without TLS
# unless given a certificate.
tls_patch() {
	if [[ -n "${CATALOG_CA_SECRET:-}" ]]; then
		[[ "$CATALOG_CA_SECRET" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || die "CATALOG_CA_SECRET=$CATALOG_CA_SECRET is not a Secret name"
		printf '%s\n' '    - op: add' '      path: /spec/tls' "      value: {caBundle: {secretRef: {name: $CATALOG_CA_SECRET, key: ca.crt}}}"
		return
	fi
	case "${CATALOG_ADDRESS:-}" in
	127.* | localhost:* | "[::1]:"*)
		printf '%s\n' '    - op: add' '      path: /spec/tls' '      value: {insecurePlaintext: true}' ;;
	esac
}

# relative prints the path of a folder of the repository relative to $tmp:
# kustomize refuses absolute paths in resources.
relative() { realpath --relative-to="$tmp" "$root/$1"; }

server() { kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}'; }

# asdeployed runs hack/asdeployed (see its doc comment) from the repository root.
# Its processes' logs, PID files and the installer's kubeconfig go to
# FERRY_DEPLOY_DIR (default ${FERRY_CACHE:-~/.cache/ferry}/deploy).
asdeployed() { (cd "$root" && go run ./hack/asdeployed -dir "${FERRY_DEPLOY_DIR:-${FERRY_CACHE:-$HOME/.cache/ferry}/deploy}" "$@"); }

# deploy_local applies the rendered manifests but for the two Deployments
# and runs their containers here, with their flags and the installer's
# ServiceAccount token.
deploy_local() {
	say "bringing Ferry (DEPLOY_WITH=$deploy_with, config/$overlay) up on $(server): manifests applied, the installer and catalogd as local processes"
	render_default >"$tmp/default.yaml"
	(cd "$root" && go build -o "$root/bin/" ./cmd/installer ./cmd/catalogd)
	local flags=()
	read -r -a flags <<<"${DEPLOY_LOCAL_FLAGS:-}"
	asdeployed -manifests "$tmp/default.yaml" -bin-dir "$root/bin" "${flags[@]}" up
	cat <<MSG

Ferry is up: catalogd on $CATALOG_ADDRESS and the installer run on this machine with the flags
of their Deployments; the installer as ServiceAccount $ns/ferry-installer (make deploy-status).
Next steps:
  export KUBECONFIG=$KUBECONFIG
  make deploy-samples        # CatalogSource ferry-samples ($CATALOG_ADDRESS) + Subscription lighthouse/lighthouse-operator
  kubectl get catalogsources
  kubectl get subscriptions -A
  kubectl -n lighthouse wait --for=condition=Installed subscription/lighthouse-operator --timeout=3m
MSG
}

deploy_status() {
	if [[ "$DEPLOY_TARGET" == local ]]; then
		asdeployed status
	else
		kubectl -n "$ns" get deployments,pods,services
	fi
}

deploy() {
	if [[ "$DEPLOY_TARGET" == local ]]; then
		deploy_local
		return
	fi
	say "applying Ferry (DEPLOY_WITH=$deploy_with) to $(server) (KUBECONFIG=$KUBECONFIG)"
	render_default >"$tmp/default.yaml"
	kubectl apply --server-side --field-manager=ferry-deploy -f "$tmp/default.yaml"
	say "waiting up to $timeout for the Deployments in $ns to become Available"
	if ! kubectl -n "$ns" wait --for=condition=Available --timeout="$timeout" deployment/ferry-installer deployment/catalogd; then
		kubectl -n "$ns" get deployments,pods -o wide >&2 || true
		die "the Deployments did not become Available; see kubectl -n $ns describe pods"
	fi
	kubectl -n "$ns" get deployments,services
	cat <<MSG

Ferry is deployed in namespace $ns.
Next steps:
  export KUBECONFIG=$KUBECONFIG
  make deploy-samples        # CatalogSource ferry-samples + Subscription lighthouse/lighthouse-operator
  kubectl get catalogsources
  kubectl get subscriptions -A
  kubectl -n lighthouse wait --for=condition=Installed subscription/lighthouse-operator --timeout=3m
On the local cluster (make cluster-up) the Ferry pods run on a kwok fake node and do not
execute: there make deploy runs them as local processes (DEPLOY_TARGET=local), see docs/deploy.md.
MSG
}

subscriptions_crd_exists() {
	kubectl get crd subscriptions.operators.ferry.dev >/dev/null 2>&1
}

undeploy() {
	say "removing Ferry from $(server) (KUBECONFIG=$KUBECONFIG)"
	# Subscriptions carry the finalizer operators.ferry.dev/uninstall: the
	# installer removes what it installed, then the finalizer. Delete them
	# while the installer still runs, before its Deployment and the CRDs go.
	if subscriptions_crd_exists && [[ -n "$(kubectl get subscriptions -A -o name 2>/dev/null)" ]]; then
		say "deleting Subscriptions (the installer uninstalls their operators)"
		if ! kubectl delete subscriptions --all -A --wait --timeout="$timeout"; then
			kubectl get subscriptions -A >&2 || true
			die "Subscriptions are still there: is the installer running? docs/deploy.md (Removing Ferry) shows how to drop them without uninstalling their operators"
		fi
	fi
	if kubectl get crd catalogsources.operators.ferry.dev >/dev/null 2>&1; then
		kubectl delete catalogsources --all --wait --timeout="$timeout"
	fi
	if [[ "$DEPLOY_TARGET" == local ]]; then
		asdeployed down
	fi
	render_default >"$tmp/default.yaml"
	kubectl delete --ignore-not-found --wait --timeout="$timeout" -f "$tmp/default.yaml"
	say "Ferry removed (operators it installed were uninstalled with their Subscriptions; CRDs they shipped are kept unless crdDeletionPolicy: Delete)"
}

deploy_samples() {
	subscriptions_crd_exists || die "Ferry's CRDs are not installed; run make deploy first"
	say "applying config/samples${CATALOG_ADDRESS:+ (CatalogSource address $CATALOG_ADDRESS)}${CATALOG_CA_SECRET:+ (TLS, CA of Secret $ns/$CATALOG_CA_SECRET)}"
	render_samples >"$tmp/samples.yaml"
	kubectl apply --server-side --field-manager=ferry-deploy -f "$tmp/samples.yaml"
	cat <<MSG

Watch the installer pick the Subscription up:
  export KUBECONFIG=$KUBECONFIG
  kubectl get catalogsources
  kubectl get subscriptions -A
  kubectl -n lighthouse wait --for=condition=Installed subscription/lighthouse-operator --timeout=3m
MSG
}

undeploy_samples() {
	render_samples >"$tmp/samples.yaml"
	kubectl delete --ignore-not-found --wait --timeout="$timeout" -f "$tmp/samples.yaml"
}

case "${1:-}" in
deploy) deploy ;;
undeploy) undeploy ;;
deploy-samples) deploy_samples ;;
deploy-status) deploy_status ;;
render) render_default ;;
undeploy-samples) undeploy_samples ;;
*) die "usage: $0 deploy|undeploy|deploy-status|deploy-samples|undeploy-samples|render" ;;
esac
