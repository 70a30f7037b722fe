// Package testregistry runs OCI registries for tests: Start runs
// hack/registry (go-containerregistry's pkg/registry) as a real process on
// 127.0.0.1; NewFaulty serves the same registry from the test process
// behind a handler that corrupts blobs, asks for credentials, hides
// manifests or stops answering on demand, for the failure cases.
package testregistry
