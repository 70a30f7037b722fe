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

# The end-to-end tests that bring up control planes of their own and use
# nothing of the run's shared cluster (go test -run pattern). make test runs
# them (test-e2e-own-clusters) at the same time as the others
# (test-e2e-shared), each in a go test run of its own: go test runs a test
# package's tests one after the other.
E2E_OWN_CLUSTERS_RUN ?= ^TestDeployScript$$

.PHONY: test-e2e-shared test-e2e-own-clusters

test-e2e-shared: testbin helm ## The end-to-end tests but E2E_OWN_CLUSTERS_RUN (the ones of the shared cluster)
	hack/test-e2e.sh -skip '$(E2E_OWN_CLUSTERS_RUN)' $(GOTESTFLAGS)

test-e2e-own-clusters: testbin helm ## The end-to-end tests E2E_OWN_CLUSTERS_RUN, which bring up control planes of their own
	hack/test-e2e.sh -run '$(E2E_OWN_CLUSTERS_RUN)' $(GOTESTFLAGS)
