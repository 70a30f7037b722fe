# Deployment targets: apply config/ to a cluster with kubectl.
# Included by the root Makefile; recipes live in hack/deploy.sh.
# See docs/deploy.md.

##@ Deploy

# Images to deploy; empty keeps the ones in config/default (v0.1.0).
IMG_INSTALLER ?=
IMG_CATALOGD ?=
# Address for the sample CatalogSource (deploy-samples); empty keeps
# catalogd.ferry-system.svc:50051.
CATALOG_ADDRESS ?=

DEPLOY_ENV = IMG_INSTALLER='$(IMG_INSTALLER)' IMG_CATALOGD='$(IMG_CATALOGD)' CATALOG_ADDRESS='$(CATALOG_ADDRESS)'

.PHONY: deploy undeploy deploy-samples undeploy-samples manifests-check

deploy: ## Apply config/default (CRDs, RBAC, installer, catalogd) to KUBECONFIG (default: the local cluster) and wait
	$(DEPLOY_ENV) hack/deploy.sh deploy

undeploy: ## Delete Subscriptions, CatalogSources and config/default from KUBECONFIG
	$(DEPLOY_ENV) hack/deploy.sh undeploy

deploy-samples: ## Apply config/samples: CatalogSource ferry-samples and Subscription lighthouse/lighthouse-operator
	$(DEPLOY_ENV) hack/deploy.sh deploy-samples

undeploy-samples: ## Delete config/samples
	$(DEPLOY_ENV) hack/deploy.sh undeploy-samples

manifests-check: ## Render config/default and config/samples and check them (go test ./config/)
	$(GO) test -count=1 ./config/
