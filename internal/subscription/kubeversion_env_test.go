package subscription_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/resolver"
)

// TestMinKubeVersionAboveTheCluster: a bundle whose CSV requires a newer
// Kubernetes than the API server's (envtest's, as discovery reports it)
// is not installed. A Subscription that only it fits says why; one that an
// older version fits installs that, and its status.resolution says why
// the newer one was passed over.
func TestMinKubeVersionAboveTheCluster(t *testing.T) {
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := resolver.ClusterKubeVersion(info.GitVersion)
	if err != nil {
		t.Fatal(err)
	}
	above := fmt.Sprintf("%d.%d.0", cluster.Major, cluster.Minor+1)
	dir := sampleDir(t)
	csvPath := filepath.Join(dir, "signal-store", "1.1.0", "manifests", "signal-store.clusterserviceversion.yaml")
	csv, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(csv), "minKubeVersion: 1.25.0\n") {
		t.Fatalf("%s sets no minKubeVersion to change", csvPath)
	}
	if err := os.WriteFile(csvPath, []byte(strings.Replace(string(csv), "minKubeVersion: 1.25.0\n", "minKubeVersion: "+above+"\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, c, ns, cat := setup(t, dir, nil)
	requires := fmt.Sprintf("requires Kubernetes ≥ %s (spec.minKubeVersion), the cluster is %s", above, cluster)

	// Only 1.1.0 is in the range: nothing fits, and the Subscription says why.
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", Channel: "stable", VersionRange: ">=1.1.0"})
	sub := waitSub(t, c, ns, "signals", "resolved as unsatisfiable", observed(func(s *v1alpha1.Subscription) bool {
		r := condition(s, v1alpha1.TypeResolved)
		return r.Status == metav1.ConditionFalse
	}))
	want := fmt.Sprintf(`no version of signal-store in channel "stable" of catalog %q fits the cluster's Kubernetes %s: 1.1.0 %s`, cat, cluster, requires)
	if r := condition(sub, v1alpha1.TypeResolved); r.Reason != v1alpha1.ReasonUnsatisfiable || r.Message != want {
		t.Errorf("Resolved = %s %q, want %s %q", r.Reason, r.Message, v1alpha1.ReasonUnsatisfiable, want)
	}
	assertPassedOver(t, sub, "signal-store.v1.1.0", string(resolver.ReasonKubeVersion), requires)
	if sub.Status.InstalledVersion != "" || len(sub.Status.Inventory) > 0 {
		t.Errorf("installed %q with inventory %v; want nothing", sub.Status.InstalledVersion, sub.Status.Inventory)
	}
	var revs v1alpha1.RevisionList
	if err := c.List(context.Background(), &revs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(revs.Items) > 0 {
		t.Errorf("%d revisions recorded; want none", len(revs.Items))
	}

	// Without the range, the older version that fits is installed.
	patchSpec(t, c, sub, func(s *v1alpha1.SubscriptionSpec) { s.VersionRange = "" })
	sub = waitSub(t, c, ns, "signals", "installed 1.0.0", installed("1.0.0"))
	if r := sub.Status.Resolution; len(r) == 0 || !r[0].Chosen || r[0].Bundle != "signal-store.v1.0.0" {
		t.Errorf("resolution = %+v, want signal-store.v1.0.0 chosen first", r)
	}
	assertPassedOver(t, sub, "signal-store.v1.1.0", string(resolver.ReasonKubeVersion), requires)
}

// assertPassedOver checks that status.resolution passes bundle over with
// reason and message.
func assertPassedOver(t *testing.T, sub *v1alpha1.Subscription, bundle, reason, message string) {
	t.Helper()
	for _, r := range sub.Status.Resolution {
		if r.Bundle == bundle {
			if r.Chosen || r.Reason != reason || r.Message != message {
				t.Errorf("resolution of %s = chosen %v, %s %q; want passed over, %s %q", bundle, r.Chosen, r.Reason, r.Message, reason, message)
			}
			return
		}
	}
	t.Errorf("resolution %+v does not name %s", sub.Status.Resolution, bundle)
}
