package install

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// checkSubjects refuses a rendered binding that grants to anyone but the
// bundle's own ServiceAccounts in the install namespace, except where the
// grant cannot reach beyond the install namespace. Its own ServiceAccounts
// are those it ships and those its ClusterServiceVersion names, all of
// which objs holds; the default ServiceAccount of a namespace never is,
// even when shipped, since every pod without a serviceAccountName runs as
// it.
//
// The policy, subject by subject:
//   - a ServiceAccount of the bundle in the install namespace: allowed in
//     every binding;
//   - another ServiceAccount (of another namespace, e.g. the
//     openshift-monitoring/prometheus-k8s a metrics Role is bound to, or of
//     the install namespace, not the bundle's): allowed only in a
//     RoleBinding (always in the install namespace) whose roleRef is a Role
//     the bundle installs there. Such a grant opens the operator's own
//     namespace, with rules the Subscription's ServiceAccount must itself
//     hold or be allowed to bind, and nothing else;
//   - a ServiceAccount named as one of the bundle's own in another
//     namespace (one the bundle hard-codes, such as kustomize's
//     <name>-system): it is the bundle's own, and is put into the install
//     namespace, as every namespaced object of the bundle is;
//   - the default ServiceAccount of any namespace, a User or a Group
//     (system:authenticated, system:serviceaccounts, ...): refused in every
//     binding.
//
// It changes objs only to put those ServiceAccounts into the install
// namespace.
func checkSubjects(bundle, ns string, objs []*unstructured.Unstructured) error {
	own := map[string]bool{}
	roles := map[string]bool{} // Roles the bundle installs in the install namespace
	for _, o := range objs {
		switch {
		case o.GetKind() == "ServiceAccount" && o.GetAPIVersion() == "v1" && o.GetNamespace() == ns && o.GetName() != defaultServiceAccount:
			own[o.GetName()] = true
		case o.GetKind() == "Role" && o.GroupVersionKind().Group == groupRBAC && o.GetNamespace() == ns:
			roles[o.GetName()] = true
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
		roleKind, _, _ := unstructured.NestedString(o.Object, "roleRef", "kind")
		roleName, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
		moved := false
		for i, s := range subjects {
			m, ok := s.(map[string]any)
			if !ok {
				return &InvalidBundleError{Bundle: bundle, Reason: fmt.Sprintf("%s: subjects[%d] is not an object", describe(Ref(o)), i)}
			}
			kind, _ := m["kind"].(string)
			name, _ := m["name"].(string)
			sns, _ := m["namespace"].(string)
			if reason := subjectRefusal(subject{kind, sns, name}, ns, own, o.GetKind(), roleKind, roleName, roles); reason != "" {
				return &InvalidBundleError{Bundle: bundle, Reason: fmt.Sprintf("%s: subjects[%d] %s", describe(Ref(o)), i, reason)}
			}
			if kind == "ServiceAccount" && own[name] && sns != ns {
				m["namespace"], moved = ns, true
			}
		}
		if moved {
			if err := unstructured.SetNestedSlice(o.Object, subjects, "subjects"); err != nil {
				return fmt.Errorf("install: %s: %w", describe(Ref(o)), err)
			}
		}
	}
	return nil
}

// subject is one subject of a binding.
type subject struct{ kind, namespace, name string }

func (s subject) String() string {
	kind := s.kind
	if kind == "" {
		kind = "no kind"
	}
	if s.namespace != "" {
		return kind + " " + s.namespace + "/" + s.name
	}
	return kind + " " + s.name
}

// subjectRefusal says why a binding of kind bindingKind, in namespace ns,
// of the role roleKind/roleName, may not name s; "" when it may.
func subjectRefusal(s subject, ns string, own map[string]bool, bindingKind, roleKind, roleName string, roles map[string]bool) string {
	if s.kind != "ServiceAccount" {
		return fmt.Sprintf("(%s) is not a ServiceAccount of the bundle in namespace %s; a bundle may bind only its own ServiceAccounts (%s), never a user or a group", s, ns, ownList(own))
	}
	if s.name == defaultServiceAccount {
		return fmt.Sprintf("is the default ServiceAccount of namespace %s, which every pod there without a serviceAccountName runs as; a bundle may bind only its own ServiceAccounts (%s)", s.namespace, ownList(own))
	}
	if own[s.name] {
		return "" // in the install namespace, or put there
	}
	foreign := fmt.Sprintf("(%s) is not a ServiceAccount of the bundle in namespace %s; a bundle may bind only its own ServiceAccounts (%s), and another ServiceAccount only with a RoleBinding to a Role the bundle installs", s, ns, ownList(own))
	switch {
	case bindingKind != "RoleBinding":
		return foreign + ", never with a " + bindingKind
	case roleKind != "Role":
		return fmt.Sprintf("%s, not to %s %s", foreign, roleKindName(roleKind), roleName)
	case !roles[roleName]:
		return fmt.Sprintf("%s, and it installs no Role %s in namespace %s", foreign, roleName, ns)
	}
	return ""
}

func roleKindName(kind string) string {
	if kind == "" {
		return "a roleRef without kind"
	}
	return kind
}

func ownList(own map[string]bool) string {
	if len(own) == 0 {
		return "it has none"
	}
	return strings.Join(sortedKeys(own), ", ")
}
