#!/usr/bin/env bash
# Fails when generated files, formatting or go.mod/go.sum differ from what is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
generated=(proto api config charts go.mod go.sum)
existing=()
for p in "${generated[@]}"; do [ -e "$p" ] && existing+=("$p"); done
go mod tidy
if ! git diff --quiet -- "${existing[@]}"; then
  echo "generated files or go.mod are stale; run 'make generate' and 'go mod tidy' and commit:" >&2
  git diff --stat -- "${existing[@]}" >&2
  status=1
fi
untracked=$(git ls-files --others --exclude-standard -- "${existing[@]}")
if [ -n "$untracked" ]; then
  echo "generated files are not committed:" >&2
  echo "$untracked" >&2
  status=1
fi
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  status=1
fi
[ $status = 0 ] && echo "verify: generated code, formatting and go.mod are up to date"
exit $status
