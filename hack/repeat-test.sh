#!/usr/bin/env bash
# Runs the whole test suite N times in a row on a fresh clone of HEAD and
# reports each run: result, duration, the tests that failed. A test that
# fails in some runs and passes in others is flaky; this is how to find it.
#
#   hack/repeat-test.sh [N]          # N runs of `make test` (default 10)
#   make test-repeat N=10
#
# Environment:
#   REPEAT_CMD   the command each run executes in the clone, with bash
#                (default: make test). A cheaper scope, e.g.
#                REPEAT_CMD='go test -count=1 ./internal/lru/'.
#   REPEAT_LOCK  a lock file each run holds (flock) while it runs, e.g.
#                /tmp/ferry-heavy.lock where several people share a machine;
#                empty (default): no lock.
#   REPEAT_OUT   folder for the logs and the table (default: a new folder
#                under ${TMPDIR:-/tmp}); kept after the runs.
#   REPEAT_KEEP  1 keeps the clone (default: removed at exit).
#
# The clone is made from the committed HEAD only: uncommitted changes are
# not tested (a warning says so). The shared corpus of real catalogs, when it
# lies next to this repository (../shared), is linked next to the clone, so
# the tests that use it run there too. Exit status: 0 when every run passed,
# 1 when any failed, 2 on a usage or setup error.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

n="${1:-${N:-10}}"
case "$n" in
  -h|--help) usage ;;
  ''|*[!0-9]*) echo "repeat-test: N must be a positive number, got '$n'" >&2; exit 2 ;;
esac
if ((n < 1 || n > 1000)); then
  echo "repeat-test: N must be between 1 and 1000, got $n" >&2
  exit 2
fi
cmd="${REPEAT_CMD:-make test}"
lock="${REPEAT_LOCK:-}"

repo="$(cd "$(dirname "$0")/.." && pwd)"
rev="$(git -C "$repo" rev-parse HEAD)"
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "repeat-test: the working tree has uncommitted changes; they are not tested (testing $rev)" >&2
fi

out="${REPEAT_OUT:-}"
if [ -z "$out" ]; then
  out="$(mktemp -d "${TMPDIR:-/tmp}/ferry-repeat-test.XXXXXX")"
fi
mkdir -p "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/ferry-repeat-clone.XXXXXX")"
cleanup() {
  if [ "${REPEAT_KEEP:-}" = 1 ]; then
    echo "repeat-test: clone kept in $work/ferry" >&2
  else
    chmod -R u+w "$work" 2>/dev/null || true
    rm -rf "$work"
  fi
}
trap cleanup EXIT

git clone --quiet --no-checkout "$repo" "$work/ferry"
git -C "$work/ferry" checkout --quiet --detach "$rev"
if [ -d "$repo/../shared" ]; then
  ln -s "$(cd "$repo/../shared" && pwd)" "$work/shared"
fi

table="$out/results.md"
{
  echo "# hack/repeat-test.sh: $n × \`$cmd\`"
  echo
  echo "Commit $rev, clone $work/ferry, started $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname)."
  echo
  echo "| run | result | duration | failed tests |"
  echo "|---|---|---|---|"
} >"$table"

# failed_tests LOG prints the names of the failed tests (subtests included),
# or, when a run failed without naming one, the failed packages or make
# targets, comma-separated.
failed_tests() {
  local log="$1" names
  names="$(sed -n 's/^[[:space:]]*--- FAIL: \([^[:space:]]*\).*/\1/p' "$log" | sort -u)"
  if [ -z "$names" ]; then
    names="$(sed -n 's/^FAIL[[:space:]]\{1,\}\([^[:space:]]\{1,\}\).*/package \1/p; s/^make.*\*\*\* \[[^]]*: \([^]]*\)\].*/make target \1/p' "$log" | sort -u)"
  fi
  echo "$names" | paste -sd, - | sed 's/,/, /g'
}

failures=0
declare -A failed_in=()
for ((i = 1; i <= n; i++)); do
  log="$out/run-$i.log"
  echo "repeat-test: run $i/$n: $cmd (log: $log)" >&2
  start=$(date +%s)
  set +e
  if [ -n "$lock" ]; then
    (cd "$work/ferry" && flock "$lock" bash -c "$cmd") >"$log" 2>&1
  else
    (cd "$work/ferry" && bash -c "$cmd") >"$log" 2>&1
  fi
  rc=$?
  set -e
  secs=$(($(date +%s) - start))
  duration="$((secs / 60))m$(printf %02d $((secs % 60)))s"
  if ((rc == 0)); then
    result=pass
    names=""
  else
    result="FAIL (exit $rc)"
    failures=$((failures + 1))
    names="$(failed_tests "$log")"
    [ -n "$names" ] || names="(none named; see run-$i.log)"
    while IFS= read -r t; do
      if [ -n "$t" ]; then failed_in["$t"]+=" $i"; fi
    done < <(echo "$names" | tr ',' '\n' | sed 's/^ *//')
  fi
  # A run that leaves files in the tree is a hidden dependency between runs.
  dirty="$(git -C "$work/ferry" status --porcelain --ignored=no | head -5 | paste -sd' ' -)"
  if [ -n "$dirty" ]; then
    names="${names:+$names; }left in the tree: $dirty"
  fi
  echo "| $i | $result | $duration | ${names//|/\\|} |" >>"$table"
  echo "repeat-test: run $i/$n: $result in $duration" >&2
done

{
  echo
  echo "$((n - failures)) of $n runs passed."
  if ((${#failed_in[@]} > 0)); then
    echo
    echo "| failed test | runs |"
    echo "|---|---|"
    for t in "${!failed_in[@]}"; do
      echo "| $t |${failed_in[$t]} |"
    done | sort
  fi
} >>"$table"

cat "$table"
echo "repeat-test: table and logs in $out" >&2
((failures == 0)) || exit 1
