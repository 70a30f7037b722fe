// Package testenv starts a real kube-apiserver and etcd for tests through
// controller-runtime's envtest, with the project's CRDs installed.
//
// The binaries come from the test bed folder built by `make testbin`
// (KUBEBUILDER_ASSETS, when set, takes precedence; TEST_ASSET_ETCD and
// TEST_ASSET_KUBE_APISERVER override one binary each). Nothing is ever
// downloaded. When the binaries are missing, Start fails the test with the
// command that builds them.
//
// env.Config and env.Client are cluster admin, for setup and assertions.
// The installer's reconcilers run with env.InstallerConfig(t): a token for
// the installer's ServiceAccount with the RBAC of config/rbac applied (the
// generated ClusterRole included), which fails the test on any request the
// API server refuses with 403. The installer writes what a Subscription
// installs as the Subscription's ServiceAccount: Tenant gives a namespace
// the documented one (examples/tenancy), named TenantServiceAccount.
//
// envtest runs no controllers: a Deployment gets no ReplicaSets and no Pods.
// Use the end-to-end harness in test/e2e for that.
//
// One environment per test:
//
//	env := testenv.Start(t)
//	err := env.Client.Create(ctx, obj)
//
// One environment shared by all tests of a package (about 3 s to start):
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) { testenv.Main(m, &env) }
package testenv
