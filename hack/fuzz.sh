#!/usr/bin/env bash
# Runs every Fuzz target of the module for a short budget each: the
# Makefile's FUZZTIME, default 5000x (5,000 executions after the seeds);
# a duration such as 30s works too.
#
# The default is a count, not a duration: with a duration, Go's fuzzing
# coordinator (go1.26) can fail a target with a bare "context deadline
# exceeded" when the deadline fires while a worker is still running an input
# (golang/go#75804, fixed in go1.27), which happens on a loaded machine. A
# count sets no deadline, so a slow machine only takes longer. A real
# finding is reported in full ("Failing input written to testdata/fuzz/...").
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-5000x}"
# Minimizing new interesting inputs can outlast a -fuzztime duration;
# crashers are still reported in full.
grep -rl --include='*_test.go' '^func Fuzz' internal cmd 2>/dev/null | sort | while read -r f; do
  pkg="./$(dirname "$f")"
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "fuzz: $pkg $target for $fuzztime"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 0 "$pkg"
  done
done
