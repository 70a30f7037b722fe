package subscription_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/subscription"
)

// subscriptionsIn lists the names of the Subscriptions in ns.
func subscriptionsIn(t *testing.T, c client.Client, ns string) []string {
	t.Helper()
	var list v1alpha1.SubscriptionList
	if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range list.Items {
		out = append(out, s.Name)
	}
	return out
}

func TestPausedCreatesNoDependency(t *testing.T) {
	_, c, ns, cat := setup(t, sampleDir(t, "lighthouse-operator/1.3.0", "lighthouse-operator/1.4.0"), nil)
	create(t, c, ns, "lighthouse", cat, v1alpha1.SubscriptionSpec{Package: "lighthouse-operator", Channel: "stable", Paused: true})
	sub := waitSub(t, c, ns, "lighthouse", "paused", observed(func(s *v1alpha1.Subscription) bool { return s.Status.State == v1alpha1.StatePaused }))
	if got := subscriptionsIn(t, c, ns); len(got) != 1 {
		t.Fatalf("a paused Subscription created dependencies: %v", got)
	}
	patchSpec(t, c, sub, func(s *v1alpha1.SubscriptionSpec) { s.Paused = false })
	waitSub(t, c, ns, "lighthouse", "installed once unpaused", installed("1.2.0"))
	waitSub(t, c, ns, "signal-store", "installed for its parent", func(s *v1alpha1.Subscription) bool { return s.Status.InstalledVersion != "" })
}

func TestApprovalPendingCreatesNoDependency(t *testing.T) {
	_, c, ns, cat := setup(t, sampleDir(t, "lighthouse-operator/1.3.0", "lighthouse-operator/1.4.0"), nil)
	// 1.0.0 needs nothing; every upgrade of it needs signal-store.
	create(t, c, ns, "lighthouse", cat, v1alpha1.SubscriptionSpec{
		Package: "lighthouse-operator", Channel: "stable", StartingVersion: "1.0.0", Approval: v1alpha1.ApprovalManual,
	})
	sub := waitSub(t, c, ns, "lighthouse", "waiting for approval", observed(func(s *v1alpha1.Subscription) bool {
		return s.Status.State == v1alpha1.StateUpgradePending && s.Status.AvailableUpgrade != nil
	}))
	if sub.Status.InstalledVersion != "1.0.0" {
		t.Fatalf("installed %q, want 1.0.0", sub.Status.InstalledVersion)
	}
	if got := subscriptionsIn(t, c, ns); len(got) != 1 {
		t.Fatalf("an upgrade waiting for approval created dependencies: %v", got)
	}
	cond := condition(sub, v1alpha1.TypeUpgradeAvailable)
	if cond == nil || !strings.Contains(cond.Message, "approving it also installs or changes dependencies: signal-store (Subscription signal-store to be created") {
		t.Errorf("UpgradeAvailable = %+v", cond)
	}
	want := sub.Status.AvailableUpgrade.Version
	patchSpec(t, c, sub, func(s *v1alpha1.SubscriptionSpec) { s.ApprovedVersion = want })
	child := waitSub(t, c, ns, "signal-store", "installed after the approval", func(s *v1alpha1.Subscription) bool { return s.Status.InstalledVersion != "" })
	if child.Labels[subscription.LabelParent] != "lighthouse" {
		t.Errorf("child labels = %v", child.Labels)
	}
	waitSub(t, c, ns, "lighthouse", "upgraded after the approval", installed(want))
}

func TestDependencyFollowsParent(t *testing.T) {
	srv, c, ns, cat := setup(t, sampleDir(t, "lighthouse-operator/1.3.0", "lighthouse-operator/1.4.0", "signal-store/1.1.0", "signal-store/2.0.0"), nil)
	create(t, c, ns, "lighthouse", cat, v1alpha1.SubscriptionSpec{Package: "lighthouse-operator", Channel: "stable"})
	waitSub(t, c, ns, "lighthouse", "installed 1.2.0", installed("1.2.0"))
	child := waitSub(t, c, ns, "signal-store", "installed 1.0.0", installed("1.0.0"))
	if child.Spec.VersionRange != ">=1.0.0 <2.0.0" {
		t.Fatalf("child versionRange = %q", child.Spec.VersionRange)
	}

	// 1.3.0 requires signal-store >=1.1.0: the child follows, then the parent.
	for _, p := range []string{"signal-store/1.1.0", "lighthouse-operator/1.3.0"} {
		if err := fsCopyOne(srv.dir, p); err != nil {
			t.Fatal(err)
		}
	}
	srv.reload(t)
	waitSub(t, c, ns, "signal-store", "installed 1.1.0", installed("1.1.0"))
	waitSub(t, c, ns, "lighthouse", "upgraded to 1.3.0", installed("1.3.0"))
	child = waitSub(t, c, ns, "signal-store", "following 1.3.0", func(s *v1alpha1.Subscription) bool { return s.Spec.VersionRange == ">=1.1.0 <2.0.0" })
	if child.Spec.VersionRange != ">=1.1.0 <2.0.0" || child.Labels[subscription.LabelParent] != "lighthouse" {
		t.Errorf("child = labels %v spec %+v", child.Labels, child.Spec)
	}
	if rb := child.Annotations[subscription.AnnotationRequiredBy]; !strings.Contains(rb, "1.3.0") {
		t.Errorf("required-by = %q, want the requirement of 1.3.0", rb)
	}
	waitEvent(t, c, ns, "lighthouse", corev1.EventTypeNormal, v1alpha1.EventReasonDependencyUpdated, `updated Subscription signal-store for signal-store: versionRange ">=1.1.0 <2.0.0"`)
}

func TestDependencyReleased(t *testing.T) {
	_, c, ns, cat := setup(t, sampleDir(t, "lighthouse-operator/1.3.0", "lighthouse-operator/1.4.0"), nil)
	create(t, c, ns, "lighthouse", cat, v1alpha1.SubscriptionSpec{Package: "lighthouse-operator", Channel: "stable"})
	sub := waitSub(t, c, ns, "lighthouse", "installed 1.2.0", installed("1.2.0"))
	waitSub(t, c, ns, "signal-store", "installed", func(s *v1alpha1.Subscription) bool { return s.Status.InstalledVersion != "" })

	// 1.0.0 requires nothing: the child is released, not deleted.
	patchSpec(t, c, sub, func(s *v1alpha1.SubscriptionSpec) { s.VersionRange, s.AllowDowngrade = "<1.1.0", true })
	waitSub(t, c, ns, "lighthouse", "downgraded to 1.0.0", installed("1.0.0"))
	child := waitSub(t, c, ns, "signal-store", "released", func(s *v1alpha1.Subscription) bool {
		return s.Labels[subscription.LabelParent] == ""
	})
	if child.Annotations[subscription.AnnotationNoLongerRequiredBy] != "lighthouse" || !isInstalledSub(child) {
		t.Errorf("released child = annotations %v, status %+v", child.Annotations, child.Status)
	}
	waitEvent(t, c, ns, "lighthouse", corev1.EventTypeNormal, v1alpha1.EventReasonDependencyReleased, "lighthouse-operator 1.0.0 no longer requires signal-store")
}

func isInstalledSub(s *v1alpha1.Subscription) bool {
	c := condition(s, v1alpha1.TypeInstalled)
	return c != nil && c.Status == "True"
}
