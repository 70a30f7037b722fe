// Package v1alpha1 holds Ferry's Kubernetes API, group operators.ferry.dev:
// CatalogSource (where a catalogd serves a catalog) and Subscription (which
// operator to install from it, and how to keep it up to date).
//
// +kubebuilder:object:generate=true
// +groupName=operators.ferry.dev
package v1alpha1
