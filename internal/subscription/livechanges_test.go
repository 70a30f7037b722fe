package subscription_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// A Manual Subscription's pending upgrade lists, in
// status.availableUpgrade.changes, what a server-side apply dry run of it
// would change in the live objects.
func TestPendingUpgradeShowsLiveDiff(t *testing.T) {
	_, c, ns, cat := setup(t, sampleDir(t), nil)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{
		Package: "signal-store", StartingVersion: "1.0.0", VersionRange: "<2.0.0", Approval: v1alpha1.ApprovalManual,
	})
	sub := waitSub(t, c, ns, "signals", "an upgrade pending", func(s *v1alpha1.Subscription) bool {
		return s.Status.InstalledVersion == "1.0.0" && s.Status.AvailableUpgrade != nil && s.Status.AvailableUpgrade.Version == "1.1.0"
	})
	changes := sub.Status.AvailableUpgrade.Changes
	want := "Deployment " + ns + `/signal-store-controller-manager: spec.template.spec.containers[0].image: "registry.example.com/ferry/signal-store:v1.0.0" -> "registry.example.com/ferry/signal-store:v1.1.0"`
	if !slices.Contains(changes, want) {
		t.Errorf("availableUpgrade.changes\n%s\nwant the line\n%s", strings.Join(changes, "\n"), want)
	}
	for _, l := range changes {
		for _, noise := range []string{"managedFields", "resourceVersion", "status.", "compared with the installed bundle"} {
			if strings.Contains(l, noise) {
				t.Errorf("availableUpgrade.changes has %q: %s", noise, l)
			}
		}
	}
	if len(changes) > 40 {
		t.Errorf("%d lines of changes, more than the bound", len(changes))
	}
	// The dry run changed nothing.
	d := &appsv1.Deployment{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "signal-store-controller-manager"}, d); err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/ferry/signal-store:v1.0.0" {
		t.Errorf("the Deployment runs %s, want the installed v1.0.0 kept", img)
	}
}
