package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/ferrydev/ferry/internal/asdeployed"
	"github.com/ferrydev/ferry/internal/testbin"
)

// TenantDir is the folder, relative to the module root, of the documented
// RBAC of a namespace's ServiceAccount (examples/tenancy): the tenant
// fixtures apply exactly those files.
const TenantDir = "examples/tenancy"

// TenantServiceAccount is the name of the ServiceAccount the tenant files
// create; Subscriptions name it in spec.serviceAccountName.
const TenantServiceAccount = "ferry-tenant"

// tenantExampleNamespace is the namespace the files are written for.
const tenantExampleNamespace = "lighthouse"

// TenantScope says which of the documented files a tenant gets.
type TenantScope int

// Tenant scopes.
const (
	// NamespaceTenant may manage its namespace and CRDs
	// (namespace-tenant.yaml): OwnNamespace operators without
	// clusterPermissions.
	NamespaceTenant TenantScope = iota
	// ClusterTenant may also write cluster-wide RBAC (and
	// cluster-tenant.yaml): any operator.
	ClusterTenant
)

// Tenant creates, with admin, the ServiceAccount ferry-tenant of namespace
// ns and the RBAC of examples/tenancy for scope, the namespace and the
// names of cluster-scoped objects rewritten for ns. It returns the
// ServiceAccount's name. One difference from the files: the tenant may
// change every CRD, not only the sample packages' (tests ship others).
func Tenant(ctx context.Context, admin *rest.Config, ns string, scope TenantScope) (string, error) {
	root, err := testbin.ModuleRoot()
	if err != nil {
		return "", err
	}
	files := []string{"namespace-tenant.yaml"}
	if scope == ClusterTenant {
		files = append(files, "cluster-tenant.yaml")
	}
	var all bytes.Buffer
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, TenantDir, f))
		if err != nil {
			return "", err
		}
		all.WriteString("\n---\n")
		all.Write(b)
	}
	m, err := asdeployed.Parse(&all)
	if err != nil {
		return "", fmt.Errorf("%s: %w", TenantDir, err)
	}
	for _, u := range m.Objects {
		if err := forNamespace(u, ns); err != nil {
			return "", fmt.Errorf("%s: %s %s: %w", TenantDir, u.GetKind(), u.GetName(), err)
		}
	}
	if err := ensureNamespace(ctx, admin, ns); err != nil {
		return "", err
	}
	if err := asdeployed.Apply(ctx, admin, m.Objects, asdeployed.WithFieldManager("ferry-tests")); err != nil {
		return "", err
	}
	return TenantServiceAccount, nil
}

// forNamespace moves one object of the tenant files from the example
// namespace to ns.
func forNamespace(u *unstructured.Unstructured, ns string) error {
	if u.GetNamespace() != "" {
		u.SetNamespace(ns)
	} else if base, ok := strings.CutSuffix(u.GetName(), "-"+tenantExampleNamespace); ok {
		u.SetName(base + "-" + ns)
	}
	if ref, ok, _ := unstructured.NestedString(u.Object, "roleRef", "name"); ok && u.GetKind() == "ClusterRoleBinding" {
		if base, cut := strings.CutSuffix(ref, "-"+tenantExampleNamespace); cut {
			if err := unstructured.SetNestedField(u.Object, base+"-"+ns, "roleRef", "name"); err != nil {
				return err
			}
		}
	}
	if subjects, ok, _ := unstructured.NestedSlice(u.Object, "subjects"); ok {
		for _, s := range subjects {
			if m, ok := s.(map[string]any); ok && m["namespace"] == tenantExampleNamespace {
				m["namespace"] = ns
			}
		}
		if err := unstructured.SetNestedSlice(u.Object, subjects, "subjects"); err != nil {
			return err
		}
	}
	if u.GetKind() == "ClusterRole" {
		rules, _, _ := unstructured.NestedSlice(u.Object, "rules")
		for _, r := range rules {
			if m, ok := r.(map[string]any); ok {
				delete(m, "resourceNames")
			}
		}
		if err := unstructured.SetNestedSlice(u.Object, rules, "rules"); err != nil {
			return err
		}
	}
	return nil
}
