// Package testcluster runs a local Kubernetes control plane for end-to-end
// tests and demos: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok with one fake Node on which Pods become Running and
// Ready without a kubelet.
//
// Every listener binds 127.0.0.1 on a free port chosen at start. Certificates
// are made with openssl: a CA, a serving certificate for 127.0.0.1 and
// localhost, a service account key pair and an admin client certificate
// (O=system:masters). Everything lives in one folder (see DefaultDir):
//
//	kubeconfig            admin kubeconfig
//	pki/                  certificates and keys
//	etcd-data/            etcd's data
//	<component>.log       each component's output
//	<component>.pid       each component's process id
//
// The processes outlive the program that started them: Up starts them and
// returns, Down stops them by process id in reverse start order (kwok first,
// etcd last). hack/cluster-up.sh and hack/cluster-down.sh call Up and Down
// through the command in hack/cluster, and the test/e2e harness calls them
// directly.
package testcluster
