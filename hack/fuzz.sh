#!/usr/bin/env bash
# Runs every Fuzz target of the module for a short time each (default 5s,
# the Makefile's FUZZTIME).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-5s}"
# Minimizing new interesting inputs can outlast -fuzztime and fail the run
# with "context deadline exceeded"; crashers are still reported in full.
grep -rl --include='*_test.go' '^func Fuzz' internal cmd 2>/dev/null | sort | while read -r f; do
  pkg="./$(dirname "$f")"
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "fuzz: $pkg $target for $fuzztime"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 0 "$pkg"
  done
done
