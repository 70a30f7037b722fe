# Ferry: an operator lifecycle manager. `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

GO ?= go
BIN_DIR := $(CURDIR)/bin
FERRY_CACHE ?= $(HOME)/.cache/ferry
TOOLS_DIR := $(FERRY_CACHE)/tools
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT := $(TOOLS_DIR)/golangci-lint-$(GOLANGCI_LINT_VERSION)
GRPCURL_VERSION ?= v1.9.3
GRPCURL := $(TOOLS_DIR)/grpcurl-$(GRPCURL_VERSION)
HELM_VERSION ?= v3.22.0
HELM := $(TOOLS_DIR)/helm-$(HELM_VERSION)
FUZZTIME ?= 5000x
# A command to run the fuzzing under, e.g. nice -n 10 (make test sets it).
FUZZ_NICE ?=
# The packages whose tests take longest (docs/testing.md, "Where the time
# goes"), named first so that go test starts them first: go test ./...
# runs at most -p (the number of cores) test binaries at once, in the order
# the packages are named, and the slowest ones, last in ./..., were the tail.
UNIT_SLOW_FIRST ?= ./internal/subscription/ ./internal/images/ ./cmd/catalogd/ ./charts/
# How many test binaries test-unit runs at once (go test -p; default: the
# number of cores). Most of the tier waits on API servers, registries and
# controllers, not the CPU: with -p 2 it used ~1.1 of the two cores on
# average; with 4 it takes ~170 s instead of ~200 s (docs/testing.md).
UNIT_PARALLEL ?= 4
CATALOGD_ARGS ?=

export FERRY_CACHE
# The chart tests (charts/) and make deploy DEPLOY_WITH=helm run this helm.
export HELM

-include hack/make/*.mk

##@ General

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^##@/ {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Build and run

.PHONY: build
build: ## Build catalogd, the installer and the kubectl-ferry plugin into bin/
	$(GO) build -o $(BIN_DIR)/ ./cmd/...

.PHONY: run
run: build grpcurl ## Start catalogd on 127.0.0.1:50051 serving the embedded sample catalog
	$(BIN_DIR)/catalogd serve $(CATALOGD_ARGS)

.PHONY: grpcurl
grpcurl: $(GRPCURL) ## Put grpcurl into bin/ (built once from the module proxy)
	@mkdir -p $(BIN_DIR) && ln -sf $(GRPCURL) $(BIN_DIR)/grpcurl

$(GRPCURL):
	@mkdir -p $(TOOLS_DIR)/gobin-grpcurl
	@echo "building grpcurl $(GRPCURL_VERSION) into $(TOOLS_DIR) (once)"
	GOBIN=$(TOOLS_DIR)/gobin-grpcurl $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	mv $(TOOLS_DIR)/gobin-grpcurl/grpcurl $@

.PHONY: helm
helm: $(HELM) ## Put helm into bin/ (built once from the module proxy)
	@mkdir -p $(BIN_DIR) && ln -sf $(HELM) $(BIN_DIR)/helm

# Built the way helm's own Makefile builds a release: the version, and the
# Kubernetes version `helm template` and `helm lint` assume (one minor above
# helm's client-go v0.X: 1.X), stamped into the binary.
$(HELM):
	@mkdir -p $(TOOLS_DIR)/gobin-helm
	@echo "building helm $(HELM_VERSION) into $(TOOLS_DIR) (once)"
	dir=$$($(GO) mod download -json helm.sh/helm/v3@$(HELM_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	minor=$$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$$dir/go.mod"); \
	[ -n "$$minor" ] || { echo "no k8s.io/client-go in $$dir/go.mod" >&2; exit 1; }; \
	GOBIN=$(TOOLS_DIR)/gobin-helm CGO_ENABLED=0 $(GO) install -trimpath -ldflags "-s -w \
	  -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
	  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$$minor \
	  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$$minor" \
	  helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(TOOLS_DIR)/gobin-helm/helm $@

##@ Code generation and checks

.PHONY: generate
generate: ## Regenerate gRPC code, deepcopy, CRDs and RBAC (pinned protoc, plugins and controller-gen); copy CRDs and RBAC rules into the chart
	hack/gen-proto.sh
	hack/gen-k8s.sh
	hack/gen-chart.sh

.PHONY: verify
verify: generate ## Fail when generated code, formatting or go.mod are stale
	hack/verify.sh

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint (v2, built from the module proxy)
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	@mkdir -p $(TOOLS_DIR)/gobin-lint
	@echo "building golangci-lint $(GOLANGCI_LINT_VERSION) into $(TOOLS_DIR) (once)"
	GOBIN=$(TOOLS_DIR)/gobin-lint $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(TOOLS_DIR)/gobin-lint/golangci-lint $@

##@ Tests

.PHONY: test
# make test fuzzes while the end-to-end tests run: they keep the two cores
# ~90% idle (they wait for timeouts, requeues and the namespace controller),
# and the fuzzing, niced, takes only what they leave. The end-to-end tests
# run as three go test runs at once, each with a cluster of its own
# (docs/testing.md, "Where the time goes"): test-e2e-part1 and
# test-e2e-part2, which together are test-e2e, and test-e2e-helm; they
# share the binaries they build (FERRY_E2E_BIN_DIR): one links them, the
# others find them up to date.
test: testbin test-unit ## Run every test: unit and envtest, short fuzzing (alongside the end-to-end tests), end-to-end (also with Ferry deployed from the Helm chart)
	FERRY_E2E_BIN_DIR=$(BIN_DIR)/e2e/bin $(MAKE) --no-print-directory -j4 --output-sync=target FUZZ_NICE='nice -n 10' fuzz test-e2e-part1 test-e2e-part2 test-e2e-helm
	@echo "all tests passed"

.PHONY: test-unit
test-unit: testbin grpcurl helm ## Unit and envtest tests (go test ./..., the slowest packages started first)
	$(GO) test -count=1 -p $(UNIT_PARALLEL) $(UNIT_SLOW_FIRST) ./...

.PHONY: fuzz
fuzz: ## Fuzz every parser for FUZZTIME each (default 5000x: 5,000 executions; a duration such as 30s works too)
	$(FUZZ_NICE) hack/fuzz.sh $(FUZZTIME)

.PHONY: bench
bench: ## Benchmarks: catalog load and serving against the real catalog, resolver
	hack/bench.sh
