package livediff

import (
	"fmt"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ferrydev/ferry/internal/install"
)

// RBACDelta lists permissions as "<who> <scope>: <verb> <resource>".
type RBACDelta struct {
	// Added are permissions the target grants that the installed version does not.
	Added []string `json:"added,omitempty"`
	// Removed are permissions the installed version grants that the target does not.
	Removed []string `json:"removed,omitempty"`
}

// RBAC compares the permissions the roles grant, by the service account
// they were generated for.
func RBAC(live, target []*unstructured.Unstructured) (RBACDelta, error) {
	old, err := permissions(live)
	if err != nil {
		return RBACDelta{}, err
	}
	next, err := permissions(target)
	if err != nil {
		return RBACDelta{}, err
	}
	var d RBACDelta
	for p := range next {
		if !old[p] {
			d.Added = append(d.Added, p)
		}
	}
	for p := range old {
		if !next[p] {
			d.Removed = append(d.Removed, p)
		}
	}
	sort.Strings(d.Added)
	sort.Strings(d.Removed)
	return d, nil
}

// permissions expands roles into one string per verb and resource.
func permissions(roles []*unstructured.Unstructured) (map[string]bool, error) {
	out := map[string]bool{}
	for _, u := range roles {
		var rules []rbacv1.PolicyRule
		if raw, ok := u.Object["rules"]; ok && raw != nil {
			var role rbacv1.ClusterRole
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role); err != nil {
				return nil, fmt.Errorf("reading the rules of %s: %w", Describe(install.Ref(u)), err)
			}
			rules = role.Rules
		}
		who := "role " + u.GetName()
		if src := u.GetAnnotations()[install.AnnotationGeneratedFrom]; src != "" {
			parts := strings.Split(src, "/")
			if len(parts) >= 2 {
				who = "serviceaccount " + parts[1]
			}
		}
		scope := "cluster-wide"
		if u.GetKind() == "Role" {
			scope = "in " + u.GetNamespace()
		}
		for _, r := range rules {
			names := ""
			if len(r.ResourceNames) > 0 {
				names = " " + strings.Join(r.ResourceNames, ",")
			}
			for _, verb := range r.Verbs {
				for _, url := range r.NonResourceURLs {
					out[fmt.Sprintf("%s %s: %s %s", who, scope, verb, url)] = true
				}
				for _, g := range orAll(r.APIGroups) {
					for _, res := range r.Resources {
						if g != "" {
							res += "." + g
						}
						out[fmt.Sprintf("%s %s: %s %s%s", who, scope, verb, res, names)] = true
					}
				}
			}
		}
	}
	return out, nil
}

func orAll(groups []string) []string {
	if len(groups) == 0 {
		return []string{""}
	}
	return groups
}
