package install_test

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/internal/install"
)

// TestHealthBlame plays the deployment controller, the scheduler and the
// kubelets for one upgraded Deployment (envtest runs none of them): its
// ReplicaSets, pods and nodes are created and their status written, and
// Health, reading them as the installer with its generated RBAC, says whom
// to blame.
func TestHealthBlame(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	res := mustApply(ctx, t, render(t, input(t, ns, lighthouse, "1.3.0")), nil)
	var d appsv1.Deployment
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: sa}, &d); err != nil {
		t.Fatal(err)
	}
	setDeploymentStatus(ctx, t, ns, func(d *appsv1.Deployment) {
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: 2, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, UnavailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable", Message: "Deployment does not have minimum availability."}},
		}
	})
	newRS := createReplicaSet(ctx, t, &d, "new1", d.Spec.Template)
	oldTemplate := *d.Spec.Template.DeepCopy()
	oldTemplate.Spec.Containers[0].Image = "registry.example.com/ferry/lighthouse-operator:v1.2.0"
	oldRS := createReplicaSet(ctx, t, &d, "old1", oldTemplate)

	good, flapping := ns+"-good", ns+"-flapping"
	createNode(ctx, t, good, corev1.ConditionTrue)
	createNode(ctx, t, flapping, corev1.ConditionUnknown, corev1.TaintNodeUnreachable)
	createOwnedPod(ctx, t, oldRS, "old-a", good, readyStatus())
	createOwnedPod(ctx, t, newRS, "new-a", flapping, crashLoopStatus())

	health := func(t *testing.T, want install.HealthBlame, substr ...string) {
		t.Helper()
		h, err := applier(t, ns).Health(ctx, res.Inventory)
		if err != nil {
			t.Fatal(err)
		}
		if h.Blame != want {
			t.Errorf("Blame = %q, want %q (%s; %s)", h.Blame, want, h.BlameMessage, h.Message)
		}
		for _, s := range substr {
			if !strings.Contains(h.BlameMessage, s) {
				t.Errorf("BlameMessage %q does not contain %q", h.BlameMessage, s)
			}
		}
		if want == install.BlameNone && (!h.Healthy || h.BlameMessage != "") || want != install.BlameNone && h.Healthy {
			t.Errorf("Health = %+v, blamed %s", h, want)
		}
	}
	// Subtests run in order: each changes the cluster for the next.
	t.Run("new pod on an unreachable node", func(t *testing.T) {
		health(t, install.BlameCluster, "Deployment "+ns+"/"+sa+": ", "pod new-a is on node "+flapping+": Ready Unknown", "node.kubernetes.io/unreachable:NoExecute")
	})
	t.Run("the node comes back and the new pod crash-loops", func(t *testing.T) {
		setNode(ctx, t, flapping, corev1.ConditionTrue)
		health(t, install.BlameRevision, "the new version fails: pod new-a container manager CrashLoopBackOff", "on node "+flapping)
	})
	t.Run("the previous version's pod is just as unready", func(t *testing.T) {
		setPodStatus(ctx, t, ns, "old-a", func(p *corev1.Pod) { p.Status = crashLoopStatus() })
		health(t, install.BlameCluster, "the previous version's pods are just as unready (1/1 not ready: pod old-a")
	})
	t.Run("a node that is gone", func(t *testing.T) {
		setPodStatus(ctx, t, ns, "old-a", func(p *corev1.Pod) { p.Status = readyStatus() })
		deletePod(ctx, t, ns, "new-a")
		createOwnedPod(ctx, t, newRS, "new-b", ns+"-gone", crashLoopStatus())
		health(t, install.BlameCluster, "pod new-b is on node "+ns+"-gone, which no longer exists")
	})
	t.Run("healthy", func(t *testing.T) {
		setDeploymentStatus(ctx, t, ns, func(d *appsv1.Deployment) {
			d.Status = appsv1.DeploymentStatus{
				ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"}},
			}
		})
		health(t, install.BlameNone)
	})
}

func readyStatus() corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionTrue},
	}}
}

func crashLoopStatus() corev1.PodStatus {
	return corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"},
		},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "manager", RestartCount: 4,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container"}},
		}},
	}
}

// createReplicaSet creates a ReplicaSet of d with template, as the
// deployment controller does: the template labelled with its hash.
func createReplicaSet(ctx context.Context, t *testing.T, d *appsv1.Deployment, hash string, template corev1.PodTemplateSpec) *appsv1.ReplicaSet {
	t.Helper()
	template = *template.DeepCopy()
	template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	sel := d.Spec.Selector.DeepCopy()
	sel.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + "-" + hash, Namespace: d.Namespace, Labels: template.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: ptr.To(true)}},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(1)), Selector: sel, Template: template},
	}
	if err := env.Client.Create(ctx, rs); err != nil {
		t.Fatalf("creating ReplicaSet: %v", err)
	}
	return rs
}

// createOwnedPod creates a pod of rs on node, with status.
func createOwnedPod(ctx context.Context, t *testing.T, rs *appsv1.ReplicaSet, name, node string, status corev1.PodStatus) {
	t.Helper()
	spec := *rs.Spec.Template.Spec.DeepCopy()
	spec.NodeName = node
	spec.AutomountServiceAccountToken = ptr.To(false)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: rs.Namespace, Labels: rs.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}},
		},
		Spec: spec,
	}
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	p.Status = status
	if err := env.Client.Status().Update(ctx, p); err != nil {
		t.Fatalf("setting pod status: %v", err)
	}
}

// createNode creates a node with its Ready condition and taints; it is
// deleted when the test ends.
func createNode(ctx context.Context, t *testing.T, name string, ready corev1.ConditionStatus, taints ...string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, k := range taints {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: k, Effect: corev1.TaintEffectNoExecute})
	}
	if err := env.Client.Create(ctx, n); err != nil {
		t.Fatalf("creating node: %v", err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), n) })
	setNode(ctx, t, name, ready)
}

// setNode writes the node's Ready condition; Ready True also removes the
// taints the node lifecycle controller puts on unhealthy nodes.
func setNode(ctx context.Context, t *testing.T, name string, ready corev1.ConditionStatus) {
	t.Helper()
	n := &corev1.Node{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
		t.Fatal(err)
	}
	if ready == corev1.ConditionTrue && len(n.Spec.Taints) > 0 {
		n.Spec.Taints = nil
		if err := env.Client.Update(ctx, n); err != nil {
			t.Fatalf("removing the taints of node %s: %v", name, err)
		}
	}
	reason, msg := "KubeletReady", "kubelet is posting ready status"
	if ready == corev1.ConditionUnknown {
		reason, msg = "NodeStatusUnknown", "Kubelet stopped posting node status."
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, Reason: reason, Message: msg, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if err := env.Client.Status().Update(ctx, n); err != nil {
		t.Fatalf("setting node %s status: %v", name, err)
	}
}
