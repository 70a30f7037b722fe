# Helm chart targets (charts/ferry). Included by the root Makefile, which
# builds the pinned helm ($(HELM), make helm). See charts/ferry/README.md.

##@ Helm chart

# The end-to-end tests test-e2e-helm runs with Ferry deployed from the
# chart: the installer with the chart's flags, ServiceAccount and RBAC
# installs (a dependency first), upgrades and uninstalls; and, with catalogd
# from the chart too (TLS and publishing on), trusts the catalog's CA from a
# ConfigMap and upgrades on a publish. The other case of
# TestTLSPublishTriggersUpgrade, catalogd from config/publishing, is no
# deployment of the chart (make test-e2e runs it). go test splits -run at
# the slash: the second part selects the subtest.
E2E_HELM_RUN ?= ^TestInstallUpgradeUninstall$$|^TestTLSPublishTriggersUpgrade$$/^chart_with_TLS_and_publishing$$

.PHONY: test-e2e-helm

test-e2e-helm: testbin helm ## End-to-end tests (E2E_HELM_RUN) with Ferry deployed from the chart (helm template) instead of config/default
	@mkdir -p $(BIN_DIR)/e2e
	DEPLOY_WITH=helm HELM_VALUES='$(HELM_VALUES)' hack/deploy.sh render >$(BIN_DIR)/e2e/ferry-helm.yaml
	FERRY_E2E_MANIFESTS=$(BIN_DIR)/e2e/ferry-helm.yaml hack/test-e2e.sh -run '$(E2E_HELM_RUN)' $(GOTESTFLAGS)
