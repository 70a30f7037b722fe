# Helm chart targets (charts/ferry). Included by the root Makefile, which
# builds the pinned helm ($(HELM), make helm). See charts/ferry/README.md.

##@ Helm chart

# The end-to-end tests test-e2e-helm runs with Ferry deployed from the chart.
E2E_HELM_RUN ?= TestInstallUpgradeUninstall|TestTLSPublishTriggersUpgrade

.PHONY: test-e2e-helm

test-e2e-helm: testbin helm ## End-to-end tests (E2E_HELM_RUN) with Ferry deployed from the chart (helm template) instead of config/default
	@mkdir -p $(BIN_DIR)/e2e
	DEPLOY_WITH=helm HELM_VALUES='$(HELM_VALUES)' hack/deploy.sh render >$(BIN_DIR)/e2e/ferry-helm.yaml
	FERRY_E2E_MANIFESTS=$(BIN_DIR)/e2e/ferry-helm.yaml hack/test-e2e.sh -run '$(E2E_HELM_RUN)' $(GOTESTFLAGS)
