package install

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// checkSubjects refuses a rendered binding whose subjects are not the
// bundle's own ServiceAccounts in the install namespace: a bundle may give
// permissions to the operator it installs, never to users, groups or
// ServiceAccounts it does not create (system:authenticated, another
// namespace's accounts). Its own ServiceAccounts are those it ships and
// those its ClusterServiceVersion names, all of which objs holds; the
// namespace's default ServiceAccount never is, even when shipped, since
// every pod without a serviceAccountName runs as it.
func checkSubjects(bundle, ns string, objs []*unstructured.Unstructured) error {
	own := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "ServiceAccount" && o.GetAPIVersion() == "v1" && o.GetNamespace() == ns && o.GetName() != defaultServiceAccount {
			own[o.GetName()] = true
		}
	}
	for _, o := range objs {
		if o.GroupVersionKind().Group != groupRBAC || (o.GetKind() != "RoleBinding" && o.GetKind() != "ClusterRoleBinding") {
			continue
		}
		subjects, found, err := unstructured.NestedSlice(o.Object, "subjects")
		if err != nil {
			return &InvalidBundleError{Bundle: bundle, Reason: fmt.Sprintf("%s: subjects: %v", describe(Ref(o)), err)}
		}
		if !found {
			continue
		}
		for i, s := range subjects {
			m, ok := s.(map[string]any)
			if !ok {
				return &InvalidBundleError{Bundle: bundle, Reason: fmt.Sprintf("%s: subjects[%d] is not an object", describe(Ref(o)), i)}
			}
			kind, _ := m["kind"].(string)
			name, _ := m["name"].(string)
			sns, _ := m["namespace"].(string)
			if kind == "ServiceAccount" && sns == ns && own[name] {
				continue
			}
			if kind == "ServiceAccount" && sns == ns && name == defaultServiceAccount {
				return &InvalidBundleError{Bundle: bundle, Reason: fmt.Sprintf(
					"%s: subjects[%d] is the default ServiceAccount of namespace %s, which every pod there without a serviceAccountName runs as; a bundle may bind only its own ServiceAccounts (%s)",
					describe(Ref(o)), i, ns, ownList(own))}
			}
			return &InvalidBundleError{Bundle: bundle, Reason: fmt.Sprintf(
				"%s: subjects[%d] (%s) is not a ServiceAccount of the bundle in namespace %s; a bundle may bind only its own ServiceAccounts (%s)",
				describe(Ref(o)), i, subjectString(kind, sns, name), ns, ownList(own))}
		}
	}
	return nil
}

func subjectString(kind, ns, name string) string {
	if kind == "" {
		kind = "no kind"
	}
	if ns != "" {
		return kind + " " + ns + "/" + name
	}
	return kind + " " + name
}

func ownList(own map[string]bool) string {
	if len(own) == 0 {
		return "it has none"
	}
	return strings.Join(sortedKeys(own), ", ")
}
