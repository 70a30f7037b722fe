// Package catalogd serves a catalog over gRPC: the operator-registry
// api.Registry protocol for existing OLM clients, Ferry's own
// ferry.catalog.v1.CatalogService, health and reflection. It holds the
// current catalog behind an atomic pointer, swaps it on reload and tells
// watchers about every change. Catalog images are followed by
// ImageCatalogs, which swaps a new digest in through the same reload;
// BundleImages gives bundles listed by image only their objects.
package catalogd
