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
FUZZTIME ?= 10s
CATALOGD_ARGS ?=

export FERRY_CACHE

-include hack/make/*.mk

##@ General

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^##@/ {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Build and run

.PHONY: build
build: ## Build catalogd (and the installer) into bin/
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

##@ Code generation and checks

.PHONY: generate
generate: ## Regenerate gRPC code, deepcopy and CRDs (pinned protoc, plugins and controller-gen)
	hack/gen-proto.sh
	hack/gen-k8s.sh

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
test: testbin test-unit fuzz test-e2e ## Run every test: unit and envtest, short fuzzing, end-to-end
	@echo "all tests passed"

.PHONY: test-unit
test-unit: testbin grpcurl ## Unit and envtest tests (go test ./...)
	$(GO) test -count=1 ./...

.PHONY: fuzz
fuzz: ## Fuzz every parser for FUZZTIME each (default 10s)
	hack/fuzz.sh $(FUZZTIME)

.PHONY: bench
bench: ## Benchmarks: catalog load and serving against the real catalog, resolver
	hack/bench.sh
