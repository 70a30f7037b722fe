package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/client-go/kubernetes"
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
	if err := awaitGranted(ctx, admin, m.Objects, ns, TenantServiceAccount); err != nil {
		return "", fmt.Errorf("%s: %w", TenantDir, err)
	}
	return TenantServiceAccount, nil
}

// awaitGranted waits until the API server's authorizer allows the
// ServiceAccount ns/sa what each role bound to it in objs grants: the
// authorizer learns of new RBAC objects from its own watch, a moment after
// they are stored, and a check made in between is refused. It holds whole
// Roles and bindings, so one request of each bound role's first rule tells
// that the pair is in force.
func awaitGranted(ctx context.Context, admin *rest.Config, objs []*unstructured.Unstructured, ns, sa string) error {
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}
	var want []authorizationv1.ResourceAttributes
	for _, b := range objs {
		if b.GetKind() != "RoleBinding" && b.GetKind() != "ClusterRoleBinding" || !bindsServiceAccount(b, ns, sa) {
			continue
		}
		refKind, _, _ := unstructured.NestedString(b.Object, "roleRef", "kind")
		refName, _, _ := unstructured.NestedString(b.Object, "roleRef", "name")
		for _, r := range objs {
			if r.GetKind() != refKind || r.GetName() != refName || (refKind == "Role" && r.GetNamespace() != b.GetNamespace()) {
				continue
			}
			if attr, ok := firstRule(r, b.GetNamespace()); ok {
				want = append(want, attr)
			}
		}
	}
	user := serviceaccount.MakeUsername(ns, sa)
	for _, attr := range want {
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: serviceaccount.MakeGroupNames(ns), ResourceAttributes: &attr},
			}, metav1.CreateOptions{})
			if err != nil {
				return false, err
			}
			return r.Status.Allowed, nil
		})
		if err != nil {
			return fmt.Errorf("ServiceAccount %s/%s is not yet allowed to %s %s.%s %q in %q: %w",
				ns, sa, attr.Verb, attr.Resource, attr.Group, attr.Name, attr.Namespace, err)
		}
	}
	return nil
}

// bindsServiceAccount reports whether binding b names ns/sa as a subject.
func bindsServiceAccount(b *unstructured.Unstructured, ns, sa string) bool {
	subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
	for _, s := range subjects {
		m, ok := s.(map[string]any)
		if ok && m["kind"] == "ServiceAccount" && m["name"] == sa && m["namespace"] == ns {
			return true
		}
	}
	return false
}

// firstRule is the request role's first resource rule allows (its first
// verb, group, resource and name), bound in namespace (empty:
// cluster-wide); false when role has no resource rule.
func firstRule(role *unstructured.Unstructured, namespace string) (authorizationv1.ResourceAttributes, bool) {
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	for _, r := range rules {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		verbs, groups, resources := stringsOf(m["verbs"]), stringsOf(m["apiGroups"]), stringsOf(m["resources"])
		if len(verbs) == 0 || len(groups) == 0 || len(resources) == 0 {
			continue
		}
		res, sub, _ := strings.Cut(resources[0], "/")
		attr := authorizationv1.ResourceAttributes{Namespace: namespace, Verb: verbs[0], Group: groups[0], Resource: res, Subresource: sub}
		if names := stringsOf(m["resourceNames"]); len(names) > 0 {
			attr.Name = names[0]
		}
		return attr, true
	}
	return authorizationv1.ResourceAttributes{}, false
}

// stringsOf is v's strings when v is a list.
func stringsOf(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
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
