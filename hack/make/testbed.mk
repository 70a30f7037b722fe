# Test bed targets (binaries, local cluster, envtest and end-to-end tests).
# Included by the root Makefile; recipes live in scripts under hack/.
# See docs/testing.md.

##@ Test bed

# Folder of the test bed binaries, named from hack/testbin/versions.env
# (the only place the versions are kept); honours FERRY_CACHE.
TESTBIN_DIR := $(shell FERRY_CACHE='$(or $(FERRY_CACHE),$(HOME)/.cache/ferry)' hack/testbin.sh --print-dir)
export TESTBIN_DIR

# Extra flags for go test, e.g. make test-e2e GOTESTFLAGS='-run Deployment -v'.
GOTESTFLAGS ?=

.PHONY: testbin cluster-up cluster-down cluster-status test-envtest test-e2e

testbin: ## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok into TESTBIN_DIR (~7-15 min cold, instant when present)
	hack/testbin.sh

cluster-up: testbin ## Start a local cluster (kwok fake node) on 127.0.0.1 and print its kubeconfig path; safe to re-run
	hack/cluster-up.sh

cluster-down: ## Stop the local cluster started by cluster-up (keeps its logs)
	hack/cluster-down.sh

cluster-status: ## Show which local cluster components are running, with their PIDs and logs
	hack/cluster-status.sh

test-envtest: testbin helm ## Run the tests of the packages that use envtest (real kube-apiserver + etcd; charts/ needs helm)
	hack/test-envtest.sh $(GOTESTFLAGS)

test-e2e: testbin helm ## Run the end-to-end tests against a fresh local cluster (go test -tags e2e ./test/e2e/...; the chart tests need helm)
	hack/test-e2e.sh $(GOTESTFLAGS)

# make test runs the end-to-end tests in two parts at once, each a go test
# run with a cluster of its own (go test runs one package's tests one after
# the other, and two installers in one cluster would compete for one leader
# lease): E2E_PART2_RUN (a go test -run pattern) in test-e2e-part2, every
# other test in test-e2e-part1. Part 2 holds TestDeployScript, which brings
# up control planes of its own, and TestCommunityOperators, the longest test
# of the shared cluster; part 1 keeps TestDeploymentsStayAvailable, which
# needs three minutes of other tests around it. See docs/testing.md, "Where
# the time goes".
E2E_PART2_RUN ?= ^TestDeployScript$$|^TestCommunityOperators$$

.PHONY: test-e2e-part1 test-e2e-part2

test-e2e-part1: testbin helm ## The end-to-end tests but E2E_PART2_RUN, against a cluster of their own
	hack/test-e2e.sh -skip '$(E2E_PART2_RUN)' $(GOTESTFLAGS)

test-e2e-part2: testbin helm ## The end-to-end tests E2E_PART2_RUN, against a cluster of their own
	hack/test-e2e.sh -run '$(E2E_PART2_RUN)' $(GOTESTFLAGS)
