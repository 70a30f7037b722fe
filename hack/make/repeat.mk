# Flake hunting: the whole suite N times on a fresh clone of HEAD.
# Included by the root Makefile; the recipe is hack/repeat-test.sh.
# See docs/testing.md.

##@ Flake hunting

.PHONY: test-repeat

test-repeat: N ?= 10
test-repeat: ## Run make test N times (default 10) on a fresh clone of HEAD; table of results, durations and failed tests; fails if any run failed (REPEAT_CMD swaps the command)
	hack/repeat-test.sh $(N)
