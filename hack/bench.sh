#!/usr/bin/env bash
# `make bench`: the Go benchmarks of ./internal/..., then catalogd measured as
# a real process against the real community catalog and synthetic catalogs of
# 1×, 2× and 4× its size (hack/bench). Runs under nice; about 3-5 minutes on
# a 2-core machine. Extra arguments go to hack/bench, e.g.
#   hack/bench.sh -synthetic '' -repeat 1
# BENCHTIME (default 1s) is passed to go test -benchtime; SKIP_GO_BENCH=1
# skips the go test benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

export FERRY_CACHE="${FERRY_CACHE:-$HOME/.cache/ferry}"
benchtime="${BENCHTIME:-1s}"

if [[ "${SKIP_GO_BENCH:-}" != 1 ]]; then
  # Packages under internal/ whose tests define a Benchmark function.
  mapfile -t pkgs < <(grep -rl --include='*_test.go' -E '^func Benchmark[A-Z0-9_]' internal 2>/dev/null |
    xargs -r -n1 dirname | sort -u | sed 's|^|./|')
  if ((${#pkgs[@]} == 0)); then
    echo "bench: no Go benchmarks under ./internal/ yet; skipping go test -bench"
  else
    echo "bench: go test -bench in ${pkgs[*]}"
    timeout 600 nice go test -run '^$' -bench . -benchmem -benchtime "$benchtime" -timeout 300s "${pkgs[@]}"
  fi
fi

echo "bench: catalogd against the real and synthetic catalogs (cache: $FERRY_CACHE)"
exec timeout 900 nice go run ./hack/bench "$@"
