// Package catalogd serves a catalog over gRPC: the operator-registry
// api.Registry protocol for existing OLM clients, Ferry's own
// ferry.catalog.v1.CatalogService, health and reflection. It holds the
// current catalog behind an atomic pointer, swaps it on reload and tells
// watchers about every change.
package catalogd
