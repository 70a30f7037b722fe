#!/usr/bin/env bash
# Builds the test bed binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok) from the Go module proxy into
#   ${FERRY_CACHE:-$HOME/.cache/ferry}/testbin/k8s-<v>-etcd-<v>-kwok-<v>/
# Versions come from hack/testbin/versions.env.
#
# Usage: hack/testbin.sh            build if missing, then print the folder
#        hack/testbin.sh --print-dir print the folder and exit (no build)
#        hack/testbin.sh --check     exit 0 if the binaries are present, 1 if not
#
# Idempotent: returns at once when the folder is complete. A build goes into a
# temporary folder next to the destination and is renamed into place only when
# every binary is built, so an interrupted build never looks complete.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/testbin/versions.env
source "${ROOT}/hack/testbin/versions.env"

CACHE="${FERRY_CACHE:-${HOME}/.cache/ferry}"
NAME="k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-kwok-${KWOK_VERSION}"
PARENT="${CACHE}/testbin"
DEST="${PARENT}/${NAME}"
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { printf 'testbin: %s\n' "$*" >&2; }
die() { printf 'testbin: error: %s\n' "$*" >&2; exit 1; }

complete() {
	local dir="$1" b
	for b in "${BINARIES[@]}"; do
		[[ -x "${dir}/${b}" ]] || return 1
	done
}

case "${1:-}" in
--print-dir) echo "${DEST}"; exit 0 ;;
--check) complete "${DEST}"; exit $? ;;
"") ;;
*) die "unknown argument '$1' (expected --print-dir, --check or nothing)" ;;
esac

if complete "${DEST}"; then
	log "binaries present in ${DEST}"
	echo "${DEST}"
	exit 0
fi

command -v go >/dev/null || die "go not found in PATH"
mkdir -p "${PARENT}"

# One build at a time per cache folder; a second caller waits for the first.
exec 9>"${PARENT}/.${NAME}.lock"
if ! flock -n 9; then
	log "another build of ${NAME} is running; waiting for it to finish"
	flock 9
fi
if complete "${DEST}"; then
	log "binaries present in ${DEST}"
	echo "${DEST}"
	exit 0
fi

TMP="$(mktemp -d "${PARENT}/.${NAME}.tmp.XXXXXX")"
LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/ferry-testbin-log.XXXXXX")"
cleanup() { rm -rf "${TMP}"; }
trap cleanup EXIT

log "building ${NAME} into ${DEST}"
log "a cold build (empty Go caches) takes ~15 minutes on 2 cores; with a warm Go build cache ~20 s"

# explain_failure LOGFILE WHAT: prints a precise reason for a failed go command.
explain_failure() {
	local logfile="$1" what="$2" refused line
	refused="$(grep -oE '[A-Za-z0-9._~/-]+@v[0-9][A-Za-z0-9.+-]*: (reading|verifying|unrecognized)[^ ]* [^ ]*: 403' "${logfile}" | sed -E 's/: (reading|verifying|unrecognized).*//' | sort -u || true)"
	if [[ -z "${refused}" ]] && grep -qiE '403|not available' "${logfile}"; then
		refused="$(grep -iE '403|not available' "${logfile}" | head -n 5)"
	fi
	echo "----- last lines of the go output (${logfile}) -----" >&2
	tail -n 25 "${logfile}" >&2
	echo "-----" >&2
	if [[ -n "${refused}" ]]; then
		printf 'testbin: error: building %s: the Go module proxy refused:\n' "${what}" >&2
		while IFS= read -r line; do printf '  %s\n' "${line}" >&2; done <<<"${refused}"
		cat >&2 <<-EOF
		testbin: a 403 "This module version is not available" from the proxy is final for that
		testbin: version. List the versions it serves with 'go list -m -versions MODULE' and pin
		testbin: one in hack/testbin/versions.env and the nested modules under hack/testbin/
		testbin: (see docs/testing.md, "Troubleshooting").
		EOF
	else
		printf 'testbin: error: building %s failed; full output in %s\n' "${what}" "${logfile}" >&2
	fi
	exit 1
}

# run_go WHAT DIR CMD...: runs CMD (a go command) in DIR at low priority, without cgo.
run_go() {
	local what="$1" dir="$2" logfile start
	shift 2
	logfile="${LOGDIR}/$(printf %s "${what}" | tr -c "A-Za-z0-9.-" "_").log"
	start=${SECONDS}
	log "building ${what} ..."
	if ! (cd "${dir}" && CGO_ENABLED=0 nice -n 10 "$@") >"${logfile}" 2>&1; then
		explain_failure "${logfile}" "${what}"
	fi
	log "built ${what} in $((SECONDS - start)) s"
}

k8s_minor="${K8S_VERSION#v*.}"; k8s_minor="${k8s_minor%%.*}"
k8s_major="${K8S_VERSION#v}"; k8s_major="${k8s_major%%.*}"
K8S_LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=${k8s_major} -X k8s.io/component-base/version.gitMinor=${k8s_minor} -X k8s.io/component-base/version.gitTreeState=clean"

start_all=${SECONDS}
run_go "etcd ${ETCD_VERSION}" "${ROOT}/hack/testbin/etcd" \
	go build -trimpath -ldflags "-s -w" -o "${TMP}/etcd" .
run_go "kwok ${KWOK_VERSION}" "${TMP}" \
	env GOBIN="${TMP}" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
run_go "kube-apiserver, kube-controller-manager, kube-scheduler ${K8S_VERSION}" "${ROOT}/hack/testbin/k8s" \
	go build -trimpath -ldflags "${K8S_LDFLAGS}" -o "${TMP}/" \
	k8s.io/kubernetes/cmd/kube-apiserver \
	k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler

complete "${TMP}" || die "build finished but ${TMP} lacks one of: ${BINARIES[*]}"
"${TMP}/kube-apiserver" --version >&2
"${TMP}/etcd" --version | head -n 1 >&2

# Replace an incomplete leftover, then rename into place atomically.
if [[ -e "${DEST}" ]]; then
	log "removing incomplete ${DEST}"
	rm -rf "${DEST}"
fi
chmod 0755 "${TMP}"
mv -T "${TMP}" "${DEST}"
rm -rf "${LOGDIR}"
log "done in $((SECONDS - start_all)) s: ${DEST}"
echo "${DEST}"
