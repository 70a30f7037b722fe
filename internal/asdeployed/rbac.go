package asdeployed

import (
	"context"
	"fmt"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// grant is one request a bound role allows a ServiceAccount.
type grant struct {
	namespace, name string // the ServiceAccount
	attr            authorizationv1.ResourceAttributes
}

// grants are, for every ServiceAccount a RoleBinding or ClusterRoleBinding
// in objs names, the request the first resource rule of the bound role
// allows, when that role is in objs too.
func grants(objs []*unstructured.Unstructured) []grant {
	var out []grant
	for _, b := range objs {
		if b.GetKind() != "RoleBinding" && b.GetKind() != "ClusterRoleBinding" {
			continue
		}
		// A ClusterRoleBinding has the fields of a RoleBinding.
		var binding rbacv1.RoleBinding
		if runtime.DefaultUnstructuredConverter.FromUnstructured(b.Object, &binding) != nil {
			continue
		}
		ref := binding.RoleRef
		var attr authorizationv1.ResourceAttributes
		found := false
		for _, r := range objs {
			if r.GetKind() == ref.Kind && r.GetName() == ref.Name && (ref.Kind != "Role" || r.GetNamespace() == b.GetNamespace()) {
				attr, found = firstRule(r, b.GetNamespace())
				break
			}
		}
		if !found {
			continue
		}
		for _, s := range binding.Subjects {
			if s.Kind == rbacv1.ServiceAccountKind {
				out = append(out, grant{namespace: s.Namespace, name: s.Name, attr: attr})
			}
		}
	}
	return out
}

// firstRule is the request role's first resource rule allows (its first
// verb, group, resource and name), bound in namespace (empty:
// cluster-wide); false when role has no resource rule.
func firstRule(role *unstructured.Unstructured, namespace string) (authorizationv1.ResourceAttributes, bool) {
	// A ClusterRole has the fields of a Role.
	var r rbacv1.Role
	if runtime.DefaultUnstructuredConverter.FromUnstructured(role.Object, &r) != nil {
		return authorizationv1.ResourceAttributes{}, false
	}
	for _, rule := range r.Rules {
		if len(rule.Verbs) == 0 || len(rule.APIGroups) == 0 || len(rule.Resources) == 0 {
			continue
		}
		res, sub, _ := strings.Cut(rule.Resources[0], "/")
		attr := authorizationv1.ResourceAttributes{Namespace: namespace, Verb: rule.Verbs[0], Group: rule.APIGroups[0], Resource: res, Subresource: sub}
		if len(rule.ResourceNames) > 0 {
			attr.Name = rule.ResourceNames[0]
		}
		return attr, true
	}
	return authorizationv1.ResourceAttributes{}, false
}

// waitGranted waits, up to timeout each, until the API server's authorizer
// allows every grant: it learns of new Roles and bindings from its own
// watch, a moment after they are stored, and a request made in between is
// refused. It holds whole Roles and bindings, so one allowed request per
// bound role shows the pair in force.
func waitGranted(ctx context.Context, cfg *rest.Config, gs []grant, timeout time.Duration) error {
	if len(gs) == 0 {
		return nil
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, g := range gs {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: serviceaccount.MakeUsername(g.namespace, g.name), Groups: serviceaccount.MakeGroupNames(g.namespace), ResourceAttributes: &g.attr,
		}}
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
			if err != nil {
				return false, err
			}
			return r.Status.Allowed, nil
		})
		if err != nil {
			return fmt.Errorf("ServiceAccount %s/%s is not yet allowed to %s %s.%s %q in %q, which its applied RBAC grants: %w",
				g.namespace, g.name, g.attr.Verb, g.attr.Resource, g.attr.Group, g.attr.Name, g.attr.Namespace, err)
		}
	}
	return nil
}
