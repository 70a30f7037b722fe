package cli_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// lighthouse is a Manual Subscription at 1.3.0 with 1.4.0 waiting, after
// 1.4.0 once failed its health gate.
func lighthouse(ns string) *v1alpha1.Subscription {
	return &v1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: "lighthouse-operator", Namespace: ns},
		Spec: v1alpha1.SubscriptionSpec{
			Catalog: "ferry-samples", Package: "lighthouse-operator", Channel: "stable",
			VersionRange: ">=1.0.0 <2.0.0", Approval: v1alpha1.ApprovalManual,
		},
		Status: v1alpha1.SubscriptionStatus{
			State: v1alpha1.StateUpgradePending, InstalledVersion: "1.3.0", InstalledBundle: "lighthouse-operator.v1.3.0",
			LatestVersion: "1.4.0", Catalog: "ferry-samples", CurrentRevision: 3,
			AvailableUpgrade: &v1alpha1.AvailableUpgrade{
				Version: "1.4.0", Bundle: "lighthouse-operator.v1.4.0", Edge: "replaces",
				Changes: []string{"Deployment " + ns + "/lighthouse-operator-controller-manager: image registry.example.com/ferry/lighthouse-operator:v1.3.0 -> registry.example.com/ferry/lighthouse-operator:v1.4.0"},
			},
			FailedUpgrade: &v1alpha1.FailedUpgrade{
				Version: "1.4.0", Bundle: "lighthouse-operator.v1.4.0", Revision: 2, ContentDigest: "sha256:" + strings.Repeat("2", 64),
				Reason: "deployment " + ns + "/lighthouse-operator-controller-manager: 0/1 replicas available: pod unschedulable", Time: at(8, 30),
			},
			Conditions: []metav1.Condition{
				cond(v1alpha1.TypeResolved, metav1.ConditionTrue, v1alpha1.ReasonResolved, "lighthouse-operator 1.4.0 from catalog ferry-samples", 1),
				cond(v1alpha1.TypeInstalled, metav1.ConditionTrue, v1alpha1.ReasonInstalled, "1.3.0 is installed and healthy", 1),
				cond(v1alpha1.TypeUpgradeAvailable, metav1.ConditionTrue, v1alpha1.ReasonUpgradePending, "1.4.0 waits for approval", 1),
			},
		},
	}
}

// beacon is an Automatic Subscription stuck on an unsatisfiable range.
func beacon(ns string) *v1alpha1.Subscription {
	return &v1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: "beacon-metrics", Namespace: ns},
		Spec:       v1alpha1.SubscriptionSpec{Package: "beacon-metrics", VersionRange: ">=9.0.0"},
		Status: v1alpha1.SubscriptionStatus{
			State:       v1alpha1.StateFailed,
			Explanation: `channel "stable" of package beacon-metrics in catalog "sample" has no version within the range >=9.0.0 (it has 1.0.0 and 1.1.0)`,
			Conditions: []metav1.Condition{
				cond(v1alpha1.TypeResolved, metav1.ConditionFalse, v1alpha1.ReasonUnsatisfiable, `channel "stable" of package beacon-metrics in catalog "sample" has no version within the range >=9.0.0 (it has 1.0.0 and 1.1.0)`, 1),
			},
		},
	}
}

func TestList(t *testing.T) {
	a, b := namespace(t, "list-a"), namespace(t, "list-b")
	create(t, lighthouse(a))
	create(t, beacon(a))
	signal := &v1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: "signal-store", Namespace: b},
		Spec:       v1alpha1.SubscriptionSpec{Package: "signal-store", Channel: "stable", Paused: true},
		Status: v1alpha1.SubscriptionStatus{
			State: v1alpha1.StatePaused, InstalledVersion: "1.1.0", LatestVersion: "1.1.0",
			Conditions: []metav1.Condition{cond(v1alpha1.TypeProgressing, metav1.ConditionFalse, v1alpha1.ReasonPaused, "paused: nothing is changed until spec.paused is false", 1)},
		},
	}
	create(t, signal)

	cases := []struct {
		name   string
		args   []string
		golden string
	}{
		{name: "one namespace", args: []string{"list", "-n", a}, golden: "list"},
		{name: "every namespace", args: []string{"list", "-A"}, golden: "list-all"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.golden, mustRun(t, tc.args...).out)
		})
	}

	t.Run("empty namespace", func(t *testing.T) {
		empty := namespace(t, "list-empty")
		r := mustRun(t, "list", "-n", empty)
		if r.out != "" || r.errOut != "No Subscriptions found in namespace list-empty.\n" {
			t.Errorf("stdout %q, stderr %q", r.out, r.errOut)
		}
	})
	t.Run("json", func(t *testing.T) {
		var list v1alpha1.SubscriptionList
		if err := json.Unmarshal([]byte(mustRun(t, "list", "-n", a, "-o", "json").out), &list); err != nil {
			t.Fatal(err)
		}
		if list.Kind != "SubscriptionList" || len(list.Items) != 2 || list.Items[0].Kind != "Subscription" || list.Items[1].Status.InstalledVersion != "1.3.0" {
			t.Errorf("unexpected list: kind %q, %d items", list.Kind, len(list.Items))
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		wantError(t, []string{"list", "-n", a, "-o", "wide"}, `--output "wide": unknown format (want json or yaml)`)
	})
	t.Run("no kubeconfig", func(t *testing.T) {
		wantError(t, []string{"list", "--kubeconfig", "/nonexistent/kubeconfig"}, "loading the kubeconfig: stat /nonexistent/kubeconfig: no such file or directory")
	})
	t.Run("no such context", func(t *testing.T) {
		wantError(t, []string{"list", "--context", "nope"}, `loading the kubeconfig: context "nope" does not exist`)
	})
}

func TestStatus(t *testing.T) {
	ns := namespace(t, "status")
	create(t, lighthouse(ns))
	create(t, beacon(ns))

	for _, name := range []string{"lighthouse-operator", "beacon-metrics"} {
		t.Run(name, func(t *testing.T) {
			golden(t, "status-"+name, mustRun(t, "status", name, "-n", ns).out)
		})
	}
	t.Run("yaml", func(t *testing.T) {
		var sub v1alpha1.Subscription
		if err := yaml.Unmarshal([]byte(mustRun(t, "status", "lighthouse-operator", "-n", ns, "-o", "yaml").out), &sub); err != nil {
			t.Fatal(err)
		}
		if sub.Kind != "Subscription" || sub.Status.AvailableUpgrade == nil || sub.Status.AvailableUpgrade.Version != "1.4.0" {
			t.Errorf("unexpected object: %+v", sub)
		}
	})
	t.Run("no such subscription", func(t *testing.T) {
		wantError(t, []string{"status", "lighthouse", "-n", ns}, `Subscription "lighthouse" not found in namespace "status" (there: beacon-metrics, lighthouse-operator)`)
	})
	t.Run("no argument", func(t *testing.T) {
		wantError(t, []string{"status", "-n", ns}, "accepts 1 arg(s), received 0")
	})
}

// revision is revision n of the Subscription, recorded as the installer does.
func revision(sub *v1alpha1.Subscription, n int64, version, reason string, outcome v1alpha1.RevisionOutcome, msg string) *v1alpha1.Revision {
	r := &v1alpha1.Revision{
		ObjectMeta: metav1.ObjectMeta{Name: sub.Name + "-" + itoa(n), Namespace: sub.Namespace},
		Spec: v1alpha1.RevisionSpec{
			Subscription: sub.Name, Revision: n, Catalog: "ferry-samples", Package: sub.Spec.Package, Version: version,
			Bundle: sub.Spec.Package + ".v" + version, ContentDigest: digest(n), Reason: reason,
			Objects: v1alpha1.RevisionObjects{Count: 7, Blobs: []string{"ferry-blob-" + strings.Repeat("a", 64)}, Size: 4096},
		},
		Status: v1alpha1.RevisionStatus{Outcome: outcome, Message: msg, StartedAt: ptrTime(at(int(n)+6, 0))},
	}
	if outcome != v1alpha1.OutcomeProgressing {
		r.Status.FinishedAt = ptrTime(at(int(n)+6, 5))
	}
	return r
}

func digest(n int64) string { return "sha256:" + strings.Repeat(itoa(n%10), 64) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func ptrTime(t metav1.Time) *metav1.Time { return &t }

func TestHistory(t *testing.T) {
	ns := namespace(t, "history")
	sub := lighthouse(ns)
	create(t, sub)
	create(t, revision(sub, 1, "1.3.0", "Install", v1alpha1.OutcomeHealthy, "healthy"))
	create(t, revision(sub, 2, "1.4.0", "Upgrade", v1alpha1.OutcomeRolledBack, "did not become healthy within 5m0s: deployment "+ns+"/lighthouse-operator-controller-manager: 0/1 replicas available"))
	rb := revision(sub, 3, "1.3.0", "Rollback", v1alpha1.OutcomeHealthy, "healthy")
	rb.Spec.RollbackOf = 1
	create(t, rb)
	other := beacon(ns)
	create(t, other)
	create(t, revision(other, 1, "1.0.0", "Install", v1alpha1.OutcomeHealthy, "healthy"))

	golden(t, "history", mustRun(t, "history", "lighthouse-operator", "-n", ns).out)

	t.Run("json", func(t *testing.T) {
		var list v1alpha1.RevisionList
		if err := json.Unmarshal([]byte(mustRun(t, "history", "lighthouse-operator", "-n", ns, "-o", "json").out), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 3 || list.Items[2].Spec.RollbackOf != 1 || list.Items[0].Kind != "Revision" {
			t.Errorf("unexpected revisions: %+v", list.Items)
		}
	})
	t.Run("no revisions", func(t *testing.T) {
		fresh := beacon(ns)
		fresh.Name = "fresh"
		create(t, fresh)
		r := mustRun(t, "history", "fresh", "-n", ns)
		if r.out != "" || r.errOut != "Subscription history/fresh has no revisions yet.\n" {
			t.Errorf("stdout %q, stderr %q", r.out, r.errOut)
		}
	})
	t.Run("no such subscription", func(t *testing.T) {
		wantError(t, []string{"history", "nope", "-n", ns}, `Subscription "nope" not found in namespace "history"`)
	})
}
