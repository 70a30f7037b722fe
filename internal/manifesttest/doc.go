// Package manifesttest reads rendered Kubernetes manifests (kubectl
// kustomize or helm template output) in tests: it splits a multi-document
// YAML stream into objects that know their kind and name, finds them, and
// decodes them strictly into typed objects.
package manifesttest
