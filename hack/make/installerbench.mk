# The installer at scale (docs/scale.md). Included by the root Makefile.

##@ Benchmarks

# Extra flags for the bench, e.g. INSTALLERBENCH_ARGS='-installer-arg=--max-concurrent-reconciles=1 -out /tmp/scale.md'.
INSTALLERBENCH_ARGS ?=

.PHONY: bench-installer
# Subscriptions, one namespace each.
bench-installer: N ?= 1000
bench-installer: testbin ## Install N Subscriptions (default 1000) on a local cluster and compare with applying the same Deployments directly
	$(GO) run ./hack/installerbench -n $(N) $(INSTALLERBENCH_ARGS)
