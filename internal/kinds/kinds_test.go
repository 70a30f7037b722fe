package kinds_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/ferrydev/ferry/internal/kinds"
)

// TestListIsConsistent: every kind is listed once, in apply order, with a
// version, its plural resource and a scope; the built-in kinds are the ones
// client-go knows at that version, the optional ones are not built in.
func TestListIsConsistent(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	all := kinds.All()
	seen := map[schema.GroupKind]bool{}
	resources := map[schema.GroupResource]bool{}
	for i, k := range all {
		if seen[k.GroupKind()] {
			t.Errorf("%s is listed twice", k)
		}
		seen[k.GroupKind()] = true
		if resources[k.GroupResource()] {
			t.Errorf("%s: resource %s is listed twice", k, k.GroupResource())
		}
		resources[k.GroupResource()] = true
		if k.Version == "" || k.Kind == "" || k.Resource == "" {
			t.Errorf("%s: version, kind and resource must all be set: %+v", k, k)
		}
		if plural, _ := meta.UnsafeGuessKindToResource(k.GroupVersionKind()); plural.Resource != k.Resource {
			t.Errorf("%s: resource %q, want the plural %q", k, k.Resource, plural.Resource)
		}
		if i > 0 && k.Rank < all[i-1].Rank {
			t.Errorf("%s (rank %d) is listed after %s (rank %d): the list is in apply order", k, k.Rank, all[i-1], all[i-1].Rank)
		}
		if got, ok := kinds.Lookup(k.GroupKind()); !ok || got.String() != k.String() {
			t.Errorf("Lookup(%s) = %v, %v", k.GroupKind(), got, ok)
		}
		if kinds.RankOf(k.GroupKind()) != k.Rank {
			t.Errorf("RankOf(%s) = %d, want %d", k.GroupKind(), kinds.RankOf(k.GroupKind()), k.Rank)
		}
		builtIn := scheme.Recognizes(k.GroupVersionKind())
		if builtIn == k.Optional {
			t.Errorf("%s: Optional is %v, but client-go's scheme recognizes %s: %v (optional kinds are those served only once an add-on is installed)", k, k.Optional, k.GroupVersionKind(), builtIn)
		}
	}
	if _, ok := kinds.Lookup(schema.GroupKind{Group: "batch", Kind: "Job"}); ok {
		t.Error("Lookup found Job.batch, which Ferry does not install")
	}
	if d, ok := kinds.Lookup(schema.GroupKind{Group: "apps", Kind: "Deployment"}); !ok || d.Shippable {
		t.Errorf("Deployment: %+v, %v; want a listed kind a bundle may not ship (Deployments come from the CSV)", d, ok)
	}
	for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		w, ok := kinds.Lookup(schema.GroupKind{Group: kinds.GroupAdmission, Kind: kind})
		if !ok || w.Shippable || w.Namespaced || w.Rank != kinds.RankWebhook {
			t.Errorf("%s: %+v, %v; want a cluster-scoped kind Ferry generates from the CSV's webhookdefinitions, applied last, that a bundle may not ship", kind, w, ok)
		}
	}
	if all := kinds.All(); all[len(all)-1].Rank != kinds.RankWebhook {
		t.Errorf("the last kind applied is %s; webhook configurations must come after the workloads that serve them", all[len(all)-1])
	}
}

// TestAllReturnsACopy: callers cannot change the list.
func TestAllReturnsACopy(t *testing.T) {
	a := kinds.All()
	a[0].Kind = "Changed"
	for i := range a {
		a[i].ExtraVerbs = append(a[i].ExtraVerbs[:0:0], "everything")
	}
	b := kinds.All()
	if b[0].Kind == "Changed" {
		t.Error("All returned the list itself")
	}
	for _, k := range b {
		if slices.Contains(k.ExtraVerbs, "everything") {
			t.Errorf("%s: ExtraVerbs shared with a caller", k)
		}
	}
}

func TestShippableNames(t *testing.T) {
	got := kinds.ShippableNames()
	if strings.Contains(got, "Deployment") {
		t.Errorf("ShippableNames() = %q names Deployment, which a bundle may not ship", got)
	}
	for _, k := range kinds.All() {
		if k.Shippable && !strings.Contains(got, k.Kind) {
			t.Errorf("ShippableNames() = %q does not name %s", got, k.Kind)
		}
	}
	if !strings.HasSuffix(got, " and VerticalPodAutoscaler") || !strings.HasPrefix(got, "CustomResourceDefinition, ServiceAccount, ") {
		t.Errorf("ShippableNames() = %q", got)
	}
}

// otherVerbs are verbs other parts of the installer hold on a kind of the
// list, beyond what installing needs; the markers next to that code grant
// them.
var otherVerbs = map[schema.GroupResource][]string{
	// internal/tenancy acts as the ServiceAccount a Subscription names.
	{Resource: "serviceaccounts"}: {"impersonate"},
	// internal/revision writes the blobs of the Revisions it records.
	{Resource: "secrets"}: {"create", "delete"},
}

// notInstalled are the resources, not kinds Ferry installs, that the
// installer may change (create, patch, update or delete): its own API and
// what it reports through.
var notInstalled = map[schema.GroupResource]string{
	{Group: "operators.ferry.dev", Resource: "subscriptions"}:             "the finalizer of the Subscriptions it reconciles (child Subscriptions are created as the parent's ServiceAccount)",
	{Group: "operators.ferry.dev", Resource: "subscriptions/status"}:      "the Subscriptions it reconciles",
	{Group: "operators.ferry.dev", Resource: "catalogsources/status"}:     "the CatalogSources it follows",
	{Group: "operators.ferry.dev", Resource: "revisions"}:                 "the Revisions it records",
	{Group: "operators.ferry.dev", Resource: "revisions/status"}:          "the Revisions it records",
	{Group: "events.k8s.io", Resource: "events"}:                          "the events it reports",
	{Group: "authorization.k8s.io", Resource: "subjectaccessreviews"}:     "asking the API server what a ServiceAccount may do",
	{Group: "authorization.k8s.io", Resource: "selfsubjectaccessreviews"}: "asking the API server what the installer may do",
}

var writeVerbs = []string{"create", "patch", "update", "delete", "deletecollection", "*"}

// TestClusterRoleGrantsWhatTheListNeeds: config/rbac/role.yaml, generated by
// make generate from the RBAC markers, grants on every kind of the list
// exactly the verbs the list needs (and the verbs other code holds on it,
// otherVerbs), and lets the installer change nothing else but notInstalled:
// a kind added to the list without a marker, a marker added without a kind,
// or a verb too many or too few fails here.
func TestClusterRoleGrantsWhatTheListNeeds(t *testing.T) {
	path := filepath.Join("..", "..", "config", "rbac", "role.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run make generate)", err)
	}
	var cr rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &cr); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	granted := map[schema.GroupResource]sets.Set[string]{}
	for i, r := range cr.Rules {
		if len(r.NonResourceURLs) > 0 {
			continue
		}
		if len(r.ResourceNames) > 0 {
			t.Errorf("%s: rule %d names resources %v; the list's kinds are granted whole", path, i, r.ResourceNames)
			continue
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				gr := schema.GroupResource{Group: g, Resource: res}
				if granted[gr] == nil {
					granted[gr] = sets.New[string]()
				}
				granted[gr].Insert(r.Verbs...)
			}
		}
	}
	listed := map[schema.GroupResource]bool{}
	for _, k := range kinds.All() {
		gr := k.GroupResource()
		listed[gr] = true
		need := sets.New(k.NeededVerbs()...)
		got := granted[gr]
		if got == nil {
			got = sets.New[string]()
		}
		if missing := sets.List(need.Difference(got)); len(missing) > 0 {
			t.Errorf("%s does not grant %v on %s, which installing %s needs: add them to the RBAC markers in internal/kinds/kinds.go and run make generate", path, missing, gr, k)
		}
		if extra := sets.List(got.Difference(need).Difference(sets.New(otherVerbs[gr]...))); len(extra) > 0 {
			t.Errorf("%s grants %v on %s, which the list of kinds does not need for %s: add them to its ExtraVerbs or remove the marker", path, extra, gr, k)
		}
	}
	for gr, verbs := range granted {
		if listed[gr] || gr.Group == rbacv1.APIGroupAll || gr.Resource == rbacv1.ResourceAll {
			continue
		}
		if _, ok := notInstalled[gr]; ok {
			continue
		}
		if w := sets.List(verbs.Intersection(sets.New(writeVerbs...))); len(w) > 0 {
			t.Errorf("%s grants %v on %s, which is not a kind Ferry installs: list the kind in internal/kinds, or remove the marker", path, w, gr)
		}
	}
	// The one wildcard rule is the CRD upgrade check's list on everything:
	// it must never grant more.
	for gr, verbs := range granted {
		if (gr.Group == rbacv1.APIGroupAll || gr.Resource == rbacv1.ResourceAll) && !verbs.Equal(sets.New("list")) {
			t.Errorf("%s grants %v on %s", path, sets.List(verbs), gr)
		}
	}
}
