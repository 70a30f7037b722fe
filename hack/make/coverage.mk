# What of the real catalog installs: hack/coverage-catalog.
# Included by the root Makefile. See docs/catalog.md, "What installs".

##@ Measurements

.PHONY: coverage-catalog

coverage-catalog: ## Resolve and render the default channel of every package of the real catalog (../shared/corpus, or CORPUS=file.tar.xz); table of what installs and why the rest cannot (COVERAGE_ARGS=-v lists every package)
	$(GO) run ./hack/coverage-catalog $(if $(CORPUS),-corpus $(CORPUS)) $(COVERAGE_ARGS)
