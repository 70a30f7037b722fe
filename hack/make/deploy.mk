# Deployment targets: apply config/ (or the Helm chart charts/ferry) to a
# cluster with kubectl.
# Included by the root Makefile; recipes live in hack/deploy.sh.
# See docs/deploy.md.

##@ Deploy

# How Ferry's manifests are rendered: kustomize (config/default) or helm
# (charts/ferry with helm template; HELM_VALUES names a values file).
DEPLOY_WITH ?= kustomize
HELM_VALUES ?=
# DEPLOY_WITH=kustomize: the folder of config/ to render (publishing:
# catalogd with TLS, publishing and a claim; see docs/deploy.md).
DEPLOY_OVERLAY ?= default
# Images to deploy; empty keeps the ones in config/default (v0.1.0).
IMG_INSTALLER ?=
IMG_CATALOGD ?=
# Address for the sample CatalogSource (deploy-samples); empty keeps
# catalogd.ferry-system.svc:50051.
CATALOG_ADDRESS ?=
# Secret in ferry-system whose ca.crt the sample CatalogSource trusts
# (deploy-samples); empty: plaintext to a catalogd on loopback.
CATALOG_CA_SECRET ?=
# local (the installer and catalogd as processes here, as their Deployments
# run them) or cluster; empty: local when KUBECONFIG is the local cluster's.
DEPLOY_TARGET ?=

DEPLOY_ENV = DEPLOY_TARGET='$(DEPLOY_TARGET)' DEPLOY_WITH='$(DEPLOY_WITH)' DEPLOY_OVERLAY='$(DEPLOY_OVERLAY)' HELM_VALUES='$(HELM_VALUES)' IMG_INSTALLER='$(IMG_INSTALLER)' IMG_CATALOGD='$(IMG_CATALOGD)' CATALOG_ADDRESS='$(CATALOG_ADDRESS)' CATALOG_CA_SECRET='$(CATALOG_CA_SECRET)'
# The pinned helm, built once, when the chart is rendered.
DEPLOY_TOOLS = $(if $(filter helm,$(DEPLOY_WITH)),helm)

.PHONY: deploy undeploy deploy-status deploy-samples undeploy-samples manifests-check chart-check

deploy: $(DEPLOY_TOOLS) ## Apply config/default, or the chart with DEPLOY_WITH=helm, to KUBECONFIG (default: the local cluster, the installer and catalogd as local processes) and wait
	$(DEPLOY_ENV) hack/deploy.sh deploy

undeploy: $(DEPLOY_TOOLS) ## Delete Subscriptions, CatalogSources and Ferry (DEPLOY_WITH as for deploy) from KUBECONFIG
	$(DEPLOY_ENV) hack/deploy.sh undeploy

deploy-status: ## Show the installer and catalogd processes (local target) or Deployments
	$(DEPLOY_ENV) hack/deploy.sh deploy-status

deploy-samples: ## Apply config/samples: CatalogSource ferry-samples and Subscription lighthouse/lighthouse-operator
	$(DEPLOY_ENV) hack/deploy.sh deploy-samples

undeploy-samples: ## Delete config/samples
	$(DEPLOY_ENV) hack/deploy.sh undeploy-samples

manifests-check: ## Render config/default and config/samples and check them (go test ./config/)
	$(GO) test -count=1 ./config/

chart-check: helm ## Lint and render the Helm chart and compare it with config/ (go test ./charts/)
	$(GO) test -count=1 ./charts/
