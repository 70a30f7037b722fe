//go:build tools

// Package tools pins the Kubernetes commands that hack/testbin.sh builds from
// this module. It is never compiled; the blank imports keep the packages in
// go.mod and go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
