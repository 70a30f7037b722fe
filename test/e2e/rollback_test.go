//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// publishVersion adds lighthouse-operator <version> to the catalog directory:
// a copy of 1.3.0 (healthy) in the fast channel that replaces the given
// version and skips the range from 1.3.0 up to itself. crdEdits are pairs of
// text to replace in its Beacon CRD.
func (e *installerEnv) publishVersion(t *testing.T, version, replaces string, crdEdits ...string) {
	t.Helper()
	src := filepath.Join(f.ModuleRoot, "bundles", "lighthouse-operator", "1.3.0")
	tmp := filepath.Join(t.TempDir(), version)
	copyTree(t, src, tmp)
	rewrite := func(rel string, pairs ...string) {
		p := filepath.Join(tmp, rel)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		for i := 0; i+1 < len(pairs); i += 2 {
			if !strings.Contains(s, pairs[i]) {
				t.Fatalf("%s: %q not found", rel, pairs[i])
			}
			s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rewrite(filepath.Join("metadata", "annotations.yaml"), "channels.v1: stable,fast", "channels.v1: fast")
	rewrite(filepath.Join("manifests", "lighthouse-operator.clusterserviceversion.yaml"),
		"name: lighthouse-operator.v1.3.0", "name: lighthouse-operator.v"+version,
		"version: 1.3.0", "version: "+version,
		"replaces: lighthouse-operator.v1.2.0", "replaces: lighthouse-operator.v"+replaces,
		"  annotations:\n    alm-examples", "  annotations:\n    olm.skipRange: '>=1.3.0 <"+version+"'\n    alm-examples")
	if len(crdEdits) > 0 {
		rewrite(filepath.Join("manifests", "lighthouse.ferry.dev_beacons.yaml"), crdEdits...)
	}
	// Move it in as a whole, so catalogd never sees half a bundle.
	if err := os.Rename(tmp, filepath.Join(e.catalogDir, "lighthouse-operator", version)); err != nil {
		t.Fatal(err)
	}
}

func lighthouseDeployment(t *testing.T, c client.Client, ns string) *appsv1.Deployment {
	t.Helper()
	var deps appsv1.DeploymentList
	if err := c.List(context.Background(), &deps, client.InNamespace(ns), client.MatchingLabels{"operators.ferry.dev/owner-name": "lighthouse"}); err != nil || len(deps.Items) != 1 {
		t.Fatalf("lighthouse Deployments: %d (%v)", len(deps.Items), err)
	}
	return &deps.Items[0]
}

func revisionOutcomes(t *testing.T, c client.Client, ns, sub string) map[int64]v1alpha1.Revision {
	t.Helper()
	var list v1alpha1.RevisionList
	if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[int64]v1alpha1.Revision{}
	for _, r := range list.Items {
		if r.Spec.Subscription == sub {
			out[r.Spec.Revision] = r
		}
	}
	return out
}

// healthGate is the health timeout of the Subscriptions whose upgrade to
// the broken 1.4.0 must fail: the tests wait it out once each. The healthy
// revisions of the same Subscriptions (1.3.0, its restore, 1.5.0) must
// become healthy within it; on the kwok node they take 1-3 s (each test
// logs how long), so 15 s leaves a wide margin on a loaded machine. The
// installer looks at a revision that is becoming healthy on every change
// of its Deployments and at least every 5 s (--health-requeue), well
// within the gate.
const healthGate = 15 * time.Second

// logTimesToHealthy logs how long each healthy revision of the
// Subscription took to become healthy, against healthGate.
func logTimesToHealthy(t *testing.T, c client.Client, ns, sub string) {
	t.Helper()
	for n, r := range revisionOutcomes(t, c, ns, sub) {
		if r.Status.Outcome == v1alpha1.OutcomeHealthy && r.Status.StartedAt != nil && r.Status.FinishedAt != nil {
			t.Logf("revision %d (%s) became healthy in %s (health timeout %s)", n, r.Spec.Version, r.Status.FinishedAt.Sub(r.Status.StartedAt.Time), healthGate)
		}
	}
}

func TestRollbackAndRecovery(t *testing.T) {
	env := startInstaller(t)
	ns := f.CreateNamespace(t)
	ctx := context.Background()
	env.subscription(t, ns, "lighthouse", v1alpha1.SubscriptionSpec{
		Package: "lighthouse-operator", Channel: "fast", StartingVersion: "1.3.0",
		HealthTimeout: &metav1.Duration{Duration: healthGate},
	})
	// 1.3.0 installs, then the upgrade to the broken 1.4.0 fails its health
	// gate (its pods can never be scheduled) and 1.3.0 comes back.
	sub := env.waitFor(t, ns, "lighthouse", "rolled back from 1.4.0", func(s *v1alpha1.Subscription) bool {
		return s.Status.FailedUpgrade != nil && s.Status.State == v1alpha1.StateInstalled && installedAt("1.3.0")(s)
	})
	if f := sub.Status.FailedUpgrade; f.Version != "1.4.0" || !strings.Contains(f.Reason, "unschedulable") {
		t.Errorf("failedUpgrade = %+v, want 1.4.0 with the scheduler's reason", f)
	}
	rb := meta.FindStatusCondition(sub.Status.Conditions, v1alpha1.TypeRolledBack)
	if rb == nil || rb.Status != metav1.ConditionTrue || !strings.Contains(rb.Message, "restored 1.3.0 (revision 1)") {
		t.Errorf("RolledBack = %+v", rb)
	}
	d := lighthouseDeployment(t, env.client, ns)
	if len(d.Spec.Template.Spec.NodeSelector) != 0 {
		t.Errorf("the rolled back Deployment still has the broken nodeSelector %v", d.Spec.Template.Spec.NodeSelector)
	}
	// Never stuck: the restored Deployment is exactly 1.3.0's (the deployment
	// controller takes its first ReplicaSet back, which it does only for an
	// identical pod template) and rolls out, with no pod of 1.4.0 left.
	cur := waitRolledOut(t, env.client, ns, d.Name, 2*time.Minute)
	// What a user runs after a rollback finishes too.
	if out, err := f.Kubectl(t, "rollout", "status", "-n", ns, "deployment/"+d.Name, "--timeout=60s"); err != nil || !strings.Contains(out, "successfully rolled out") {
		t.Fatalf("kubectl rollout status of the restored Deployment: %v\n%s", err, out)
	}
	rss, err := replicaSetsOf(ctx, env.client, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(rss) != 2 {
		t.Fatalf("%d ReplicaSets, want 1.3.0's and 1.4.0's", len(rss))
	}
	// 1.4.0's pod template is the one with the nodeSelector no node
	// matches. (Creation timestamps have a resolution of one second and
	// both ReplicaSets are often created within the same one.)
	first, broken := rss[0], rss[1]
	if len(first.Spec.Template.Spec.NodeSelector) != 0 {
		first, broken = broken, first
	}
	if len(broken.Spec.Template.Spec.NodeSelector) == 0 || len(first.Spec.Template.Spec.NodeSelector) != 0 {
		t.Fatalf("cannot tell 1.3.0's ReplicaSet from 1.4.0's: node selectors %v and %v", first.Spec.Template.Spec.NodeSelector, broken.Spec.Template.Spec.NodeSelector)
	}
	if cur.UID != first.UID {
		t.Errorf("the rolled back Deployment runs ReplicaSet %s, not 1.3.0's %s: its pod template is not the old one", cur.Name, first.Name)
	}
	if broken.Spec.Replicas == nil || *broken.Spec.Replicas != 0 || broken.Status.Replicas != 0 {
		t.Errorf("1.4.0's ReplicaSet %s still has replicas: spec %v, status %d", broken.Name, broken.Spec.Replicas, broken.Status.Replicas)
	}
	revs := revisionOutcomes(t, env.client, ns, "lighthouse")
	if r := revs[2]; r.Spec.Version != "1.4.0" || r.Status.Outcome != v1alpha1.OutcomeRolledBack {
		t.Errorf("revision 2: %s %s, want 1.4.0 RolledBack", r.Spec.Version, r.Status.Outcome)
	}

	// A newer good version published afterwards is installed.
	env.publishVersion(t, "1.5.0", "1.4.0")
	sub = env.waitFor(t, ns, "lighthouse", "upgraded to 1.5.0", installedAt("1.5.0"))

	// Manual rollback to revision 1.
	patch := client.MergeFrom(sub.DeepCopy())
	sub.Spec.RollbackTo = &v1alpha1.RollbackTarget{Revision: 1}
	if err := env.client.Patch(ctx, sub, patch); err != nil {
		t.Fatal(err)
	}
	env.waitFor(t, ns, "lighthouse", "back on revision 1's version", func(s *v1alpha1.Subscription) bool {
		c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.TypeResolved)
		return installedAt("1.3.0")(s) && c != nil && c.Reason == v1alpha1.ReasonPinned
	})
	logTimesToHealthy(t, env.client, ns, "lighthouse")
}

func TestKilledMidUpgrade(t *testing.T) {
	env := startInstaller(t)
	ns := f.CreateNamespace(t)
	env.subscription(t, ns, "lighthouse", v1alpha1.SubscriptionSpec{
		Package: "lighthouse-operator", Channel: "fast", StartingVersion: "1.3.0",
		HealthTimeout: &metav1.Duration{Duration: healthGate},
	})
	// Wait until the upgrade to 1.4.0 is applied and waiting to become healthy.
	env.waitFor(t, ns, "lighthouse", "upgrading to 1.4.0", func(s *v1alpha1.Subscription) bool {
		return s.Status.InstalledVersion == "1.3.0" && s.Status.TargetVersion == "1.4.0" && s.Status.State == v1alpha1.StateUpgrading
	})
	if err := syscall.Kill(env.installer.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	env.startInstallerProcess(t)
	// Settled: rolled back, and the revision that restored 1.3.0 judged
	// healthy (the state is Installed as soon as 1.3.0 is applied again; the
	// revision's outcome follows at the next health check).
	sub := env.waitFor(t, ns, "lighthouse", "settled after the restart", func(s *v1alpha1.Subscription) bool {
		if s.Status.State != v1alpha1.StateInstalled || s.Status.FailedUpgrade == nil {
			return false
		}
		cur := revisionOutcomes(t, env.client, ns, "lighthouse")[s.Status.CurrentRevision]
		return cur.Status.Outcome == v1alpha1.OutcomeHealthy
	})
	// Never in between: the current revision is healthy and is what runs.
	revs := revisionOutcomes(t, env.client, ns, "lighthouse")
	cur := revs[sub.Status.CurrentRevision]
	if cur.Status.Outcome != v1alpha1.OutcomeHealthy || cur.Spec.Version != sub.Status.InstalledVersion || sub.Status.InstalledVersion != "1.3.0" {
		t.Errorf("current revision %d: %s %s, installed %s", cur.Spec.Revision, cur.Spec.Version, cur.Status.Outcome, sub.Status.InstalledVersion)
	}
	for n, r := range revs {
		if r.Status.Outcome == v1alpha1.OutcomeProgressing {
			t.Errorf("revision %d left Progressing", n)
		}
	}
	if d := lighthouseDeployment(t, env.client, ns); len(d.Spec.Template.Spec.NodeSelector) != 0 {
		t.Errorf("Deployment left half upgraded: nodeSelector %v", d.Spec.Template.Spec.NodeSelector)
	}
	logTimesToHealthy(t, env.client, ns, "lighthouse")
	// The restarted installer stops before the namespace is deleted (its
	// cleanup was registered last): uninstall while it still runs, or the
	// Subscriptions' finalizers hold the namespace until the next test.
	env.uninstallAll(t, ns)
}

// uninstallAll deletes every Subscription in ns and waits until the
// installer has uninstalled them and they are gone.
func (e *installerEnv) uninstallAll(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	if err := e.client.DeleteAllOf(ctx, &v1alpha1.Subscription{}, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	poll(t, "the Subscriptions in "+ns+" to be uninstalled", func(ctx context.Context) error {
		var list v1alpha1.SubscriptionList
		if err := e.client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		if n := len(list.Items); n > 0 {
			return fmt.Errorf("%d Subscriptions left", n)
		}
		return nil
	})
}

func TestCRDChangeBlocked(t *testing.T) {
	env := startInstaller(t, filepath.Join("lighthouse-operator", "1.4.0"))
	ns := f.CreateNamespace(t)
	ctx := context.Background()
	env.subscription(t, ns, "lighthouse", v1alpha1.SubscriptionSpec{Package: "lighthouse-operator", Channel: "fast", StartingVersion: "1.3.0"})
	env.waitFor(t, ns, "lighthouse", "installed", installedAt("1.3.0"))
	beacon := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "lighthouse.ferry.dev/v1", "kind": "Beacon",
		"metadata": map[string]any{"name": "north", "namespace": ns},
		"spec":     map[string]any{"target": "web", "pattern": "Strobe"},
	}}
	if err := env.client.Create(ctx, beacon); err != nil {
		t.Fatal(err)
	}
	// 1.6.0 no longer allows the pattern the Beacon uses.
	env.publishVersion(t, "1.6.0", "1.3.0", "                - Pulse\n                - Strobe\n", "                - Pulse\n")
	sub := env.waitFor(t, ns, "lighthouse", "blocked", func(s *v1alpha1.Subscription) bool {
		c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.TypeCRDUpgradeSafe)
		return c != nil && c.Status == metav1.ConditionFalse
	})
	want := `CRD beacons.lighthouse.ferry.dev: Beacon ` + ns + `/north (stored as v1) is invalid under the new schema: spec.pattern: Unsupported value: "Strobe"`
	if msg := meta.FindStatusCondition(sub.Status.Conditions, v1alpha1.TypeCRDUpgradeSafe).Message; !strings.Contains(msg, want) {
		t.Errorf("CRDUpgradeSafe:\n%s\nwant it to contain\n%s", msg, want)
	}
	if sub.Status.InstalledVersion != "1.3.0" {
		t.Errorf("installed %s while the upgrade is blocked", sub.Status.InstalledVersion)
	}
}
