# Container images of catalogd and the installer, built without a container
# engine (internal/images, hack/images). Included by the root Makefile.
# See docs/deploy.md (Images).

##@ Images

# Tag and version label of the images (default: git describe).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
# Architecture of the images (GOARCH; default: this machine's).
ARCH ?= $(shell $(GO) env GOARCH)
# Where make images writes the OCI layout (oci/) and the digests.
IMAGES_DIR ?= $(BIN_DIR)/images
# Repository prefix make images-push pushes to: $(REGISTRY)/catalogd, $(REGISTRY)/installer.
REGISTRY ?=
# Address of the local registry of make registry.
REGISTRY_LISTEN ?= 127.0.0.1:5000

.PHONY: images images-push registry

images: ## Build the catalogd and installer images into bin/images/oci (OCI layout; no Docker)
	$(GO) run ./hack/images --out $(IMAGES_DIR) --version '$(VERSION)' --arch '$(ARCH)'

images-push: ## Build the images and push them to REGISTRY (e.g. REGISTRY=127.0.0.1:5000/ferry); make deploy then uses their digests
	@test -n "$(REGISTRY)" || { echo "images-push: set REGISTRY=<host[:port]/path>, e.g. REGISTRY=127.0.0.1:5000/ferry" >&2; exit 1; }
	$(GO) run ./hack/images --out $(IMAGES_DIR) --version '$(VERSION)' --arch '$(ARCH)' --push '$(REGISTRY)'

registry: ## Run an in-memory OCI registry on REGISTRY_LISTEN (127.0.0.1:5000) to push to
	$(GO) run ./hack/registry --listen $(REGISTRY_LISTEN)

# make images-push writes the pushed images, pinned by digest, to
# deploy.env; make deploy uses them unless IMG_INSTALLER or IMG_CATALOGD
# are given on the command line.
ifneq ($(wildcard $(IMAGES_DIR)/deploy.env),)
include $(IMAGES_DIR)/deploy.env
endif
