// Package testbin locates the test bed binaries (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok) that hack/testbin.sh
// builds.
//
// The versions live in one place, hack/testbin/versions.env, which both the
// build script and this package read. The binaries folder is
//
//	${FERRY_CACHE:-$HOME/.cache/ferry}/testbin/k8s-<v>-etcd-<v>-kwok-<v>
//
// and is kept outside the clone so that every clone on a machine shares it.
package testbin
