package install

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferrydev/ferry/internal/kinds"
)

// CheckRestored checks objects read back from a stored revision as Render
// checks a bundle's manifests, so that stored content is never trusted more
// than catalog content: every object is of a kind Ferry installs (the kinds
// a bundle may ship, and Deployments), CRDs are apiextensions.k8s.io/v1,
// names are valid DNS subdomains, nothing appears twice, and each object is
// put in namespace (namespaced kinds) or in none (cluster-scoped kinds),
// whatever the stored content says. It changes objs in place and returns a
// *InvalidBundleError naming the first object that fails.
func CheckRestored(objs []*unstructured.Unstructured, namespace string) error {
	bad := func(format string, args ...any) error {
		return &InvalidBundleError{Reason: "stored revision: " + fmt.Sprintf(format, args...)}
	}
	if namespace == "" {
		return bad("no install namespace given")
	}
	seen := map[string]bool{}
	for i, u := range objs {
		if u == nil || u.Object == nil {
			return bad("object #%d is empty", i)
		}
		switch {
		case u.GetKind() == "":
			return bad("object #%d has no kind", i)
		case u.GetAPIVersion() == "":
			return bad("object #%d (kind %s) has no apiVersion", i, u.GetKind())
		}
		gvk := u.GroupVersionKind()
		info, ok := kinds.Lookup(gvk.GroupKind())
		if !ok || gvk.Version == "" {
			return bad("object #%d: kind %s (apiVersion %s) is not a kind Ferry installs", i, u.GetKind(), u.GetAPIVersion())
		}
		if gvk.Kind == kindCRD && gvk.Version != "v1" {
			return bad("object #%d: CustomResourceDefinition %s uses %s; only apiextensions.k8s.io/v1 is served", i, u.GetName(), u.GetAPIVersion())
		}
		if u.GetName() == "" {
			return bad("object #%d (%s) has no metadata.name", i, gvk.Kind)
		}
		if errs := invalidName(gvk.GroupKind(), u.GetName()); len(errs) > 0 {
			return bad("object #%d: %s name %q is invalid: %s", i, gvk.Kind, u.GetName(), strings.Join(errs, "; "))
		}
		if info.Namespaced {
			u.SetNamespace(namespace)
		} else {
			u.SetNamespace("")
		}
		if err := checkConversionURL(u); err != nil {
			return bad("object #%d: %s: %v", i, describe(Ref(u)), err)
		}
		if info.Rank == kinds.RankWebhook {
			if err := checkRestoredWebhook(u, namespace); err != nil {
				return bad("object #%d: %s: %v", i, describe(Ref(u)), err)
			}
		}
		key := objectKey(Ref(u))
		if seen[key] {
			return bad("object #%d: %s appears twice", i, describe(Ref(u)))
		}
		seen[key] = true
	}
	return nil
}
