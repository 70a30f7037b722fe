package subscription_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// lighthouseManager is the Deployment of lighthouse-operator.
const lighthouseManager = "lighthouse-operator-controller-manager"

// upgradeHealthTimeout is the health timeout of the upgrades below: long
// enough for the test to play the deployment controller for the new
// version before it passes.
const upgradeHealthTimeout = 4 * time.Second

// newVersionPod plays the deployment controller, the scheduler and a
// kubelet for lighthouse-operator 1.4.0 (the Deployment markHealthy leaves
// alone, neverReady): once it is applied, it creates its ReplicaSet and one
// pod on node with status, and writes the Deployment's status, rolled out
// but not available.
func newVersionPod(t *testing.T, ns, node string, status corev1.PodStatus) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			d := &appsv1.Deployment{}
			if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: lighthouseManager}, d); err != nil || !neverReady(d) {
				continue
			}
			if err := playRollout(ctx, d, node, status); err != nil {
				if ctx.Err() == nil {
					t.Errorf("playing the rollout of %s: %v", lighthouseManager, err)
				}
			}
			return
		}
	}()
}

func playRollout(ctx context.Context, d *appsv1.Deployment, node string, status corev1.PodStatus) error {
	template := *d.Spec.Template.DeepCopy()
	template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = "v140"
	sel := d.Spec.Selector.DeepCopy()
	sel.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = "v140"
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + "-v140", Namespace: d.Namespace, Labels: template.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: ptr.To(true)}},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(1)), Selector: sel, Template: template},
	}
	if err := env.Client.Create(ctx, rs); err != nil {
		return err
	}
	spec := *template.Spec.DeepCopy()
	spec.NodeName = node
	spec.AutomountServiceAccountToken = ptr.To(false)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: rs.Name + "-a", Namespace: d.Namespace, Labels: template.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}},
		},
		Spec: spec,
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		return err
	}
	pod.Status = status
	if err := env.Client.Status().Update(ctx, pod); err != nil {
		return err
	}
	// The installer applies the Deployment again while it waits: write
	// the status onto the latest version.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, UnavailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable", Message: "Deployment does not have minimum availability.", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		}
		return env.Client.Status().Update(ctx, d)
	})
}

// testNode creates a node with its Ready condition and the taints the node
// lifecycle controller leaves on it: none on a ready node (the API server
// taints every new node not-ready), unreachable on one that stopped
// reporting. It is deleted when the test ends.
func testNode(t *testing.T, name string, ready corev1.ConditionStatus) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), n) })
	n.Spec.Taints = nil
	if ready != corev1.ConditionTrue {
		n.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}}
	}
	if err := env.Client.Update(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status.", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if ready == corev1.ConditionTrue {
		n.Status.Conditions[0].Reason, n.Status.Conditions[0].Message = "KubeletReady", "kubelet is posting ready status"
	}
	if err := env.Client.Status().Update(context.Background(), n); err != nil {
		t.Fatal(err)
	}
}

func podStatus(ready bool, containers ...corev1.ContainerStatus) corev1.PodStatus {
	r := corev1.ConditionFalse
	if ready {
		r = corev1.ConditionTrue
	}
	return corev1.PodStatus{
		Phase:             corev1.PodRunning,
		Conditions:        []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: r}},
		ContainerStatuses: containers,
	}
}

func upgradeTo140(t *testing.T, c client.Client, ns, cat string) {
	t.Helper()
	create(t, c, ns, "lighthouse", cat, v1alpha1.SubscriptionSpec{
		Package: "lighthouse-operator", Channel: "fast", StartingVersion: "1.3.0",
		HealthTimeout: &metav1.Duration{Duration: upgradeHealthTimeout},
	})
}

// TestNoRollbackWhenTheNodeIsToBlame: the new version's pod sits on a node
// that stopped reporting; past the health timeout the installer waits,
// says which node and why, and does not roll back. Once the node and the
// pod are ready, the upgrade completes.
func TestNoRollbackWhenTheNodeIsToBlame(t *testing.T) {
	_, c, ns, cat := setup(t, sampleDir(t), neverReady)
	node := ns + "-unreachable"
	testNode(t, node, corev1.ConditionUnknown)
	newVersionPod(t, ns, node, podStatus(false))
	upgradeTo140(t, c, ns, cat)

	sub := waitSub(t, c, ns, "lighthouse", "waiting for the cluster", func(s *v1alpha1.Subscription) bool {
		p := condition(s, v1alpha1.TypeProgressing)
		return p != nil && p.Reason == v1alpha1.ReasonWaitingForCluster
	})
	msg := condition(sub, v1alpha1.TypeProgressing).Message
	for _, want := range []string{"lighthouse-operator 1.4.0 (revision", "past its health timeout", "is on node " + node + ": Ready Unknown (NodeStatusUnknown: Kubelet stopped posting node status)", "node.kubernetes.io/unreachable:NoExecute"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Progressing message %q lacks %q", msg, want)
		}
	}
	if sub.Status.FailedUpgrade != nil || meta.IsStatusConditionTrue(sub.Status.Conditions, v1alpha1.TypeRolledBack) || sub.Status.State != v1alpha1.StateUpgrading {
		t.Errorf("waiting for the cluster: state %s, failedUpgrade %+v, RolledBack %+v", sub.Status.State, sub.Status.FailedUpgrade, condition(sub, v1alpha1.TypeRolledBack))
	}
	if got := outcomes(revisionsOf(t, c, ns, "lighthouse")); strings.Contains(got, "Rollback") || strings.Contains(got, "RolledBack") {
		t.Errorf("revisions = %s: rolled back although the node is to blame", got)
	}
	waitEvent(t, c, ns, "lighthouse", corev1.EventTypeWarning, v1alpha1.ReasonWaitingForCluster, node)

	// The node comes back, the pod becomes ready: the upgrade completes.
	n := &corev1.Node{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Name: node}, n); err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = nil
	if err := env.Client.Update(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if err := env.Client.Status().Update(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: lighthouseManager}, d); err != nil {
			return err
		}
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		}
		return env.Client.Status().Update(context.Background(), d)
	})
	if err != nil {
		t.Fatal(err)
	}
	sub = waitSub(t, c, ns, "lighthouse", "upgraded to 1.4.0 once the node is back", installed("1.4.0"))
	if got := outcomes(revisionsOf(t, c, ns, "lighthouse")); !strings.HasSuffix(got, "2:1.4.0:Upgrade:Healthy") {
		t.Errorf("revisions = %s, want the upgrade healthy", got)
	}
	if sub.Status.FailedUpgrade != nil {
		t.Errorf("failedUpgrade = %+v", sub.Status.FailedUpgrade)
	}
}

// TestRollbackWhenTheRevisionIsToBlame: the new version's pod crash-loops
// on a healthy node; past the health timeout the upgrade is rolled back.
func TestRollbackWhenTheRevisionIsToBlame(t *testing.T) {
	_, c, ns, cat := setup(t, sampleDir(t), neverReady)
	node := ns + "-healthy"
	testNode(t, node, corev1.ConditionTrue)
	newVersionPod(t, ns, node, podStatus(false, corev1.ContainerStatus{
		Name: "manager", RestartCount: 5,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 1m20s restarting failed container"}},
	}))
	upgradeTo140(t, c, ns, cat)

	sub := waitSub(t, c, ns, "lighthouse", "rolled back from 1.4.0", func(s *v1alpha1.Subscription) bool {
		return s.Status.FailedUpgrade != nil && meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.TypeRolledBack) && installed("1.3.0")(s)
	})
	if f := sub.Status.FailedUpgrade; f.Version != "1.4.0" || !strings.Contains(f.Reason, "container manager CrashLoopBackOff") {
		t.Errorf("failedUpgrade = %+v, want 1.4.0 failed for its crash loop", f)
	}
	if got := outcomes(revisionsOf(t, c, ns, "lighthouse")); !strings.Contains(got, "2:1.4.0:Upgrade:RolledBack") || !strings.Contains(got, ":1.3.0:Rollback:") {
		t.Errorf("revisions = %s, want 1.4.0 rolled back to 1.3.0", got)
	}
}
