// Package framework is the end-to-end test harness: it brings the local
// cluster of internal/testcluster up once per `go test` run, gives tests
// clients for it, builds this module's commands once per run and runs them as
// real processes whose output is kept in the run's log folder.
//
// A run folder is ${FERRY_E2E_DIR:-${FERRY_CACHE:-$HOME/.cache/ferry}/e2e}/run-<time>-<random>/:
//
//	cluster/   the cluster's kubeconfig, certificates, component logs and PID files
//	logs/      output of the processes started with StartProcess
//	bin/       binaries built with BuildBinary
//	manifests.yaml             Ferry's rendered manifests, applied by Deployed
//	owner.lock                 locked (flock) by the run's process while it runs
//	kubeconfig-<ns>-<account>  a TokenRequest token of a ServiceAccount StartDeployed runs as
//
// Deployed applies Ferry's rendered manifests (config/default, or the file
// named by FERRY_E2E_MANIFESTS) once per run, but for the installer's and
// catalogd's Deployments; StartDeployed runs those Deployments' containers
// as processes with their arguments, environment and ServiceAccount, and
// fails the test when a process's log reports a request the API server
// refused.
//
// It is removed after a passing run and kept (its path printed) after a
// failing one, or always with FERRY_E2E_KEEP=1. Main stops the clusters of
// earlier runs that were killed; a run going on at the same time still holds
// its owner.lock, and its cluster is left alone.
//
// Use it from TestMain:
//
//	var f *framework.Framework
//
//	func TestMain(m *testing.M) { framework.Main(m, &f) }
package framework
