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
//
// It is removed after a passing run and kept (its path printed) after a
// failing one, or always with FERRY_E2E_KEEP=1.
//
// Use it from TestMain:
//
//	var f *framework.Framework
//
//	func TestMain(m *testing.M) { framework.Main(m, &f) }
package framework
