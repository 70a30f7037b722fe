//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/ferrydev/ferry/internal/testbin"
	"github.com/ferrydev/ferry/internal/testcluster"
)

// pollTimeout is generous: the tests assert behaviour, not speed.
const pollTimeout = 3 * time.Minute

func newDeployment(namespace, name string, replicas int32, nodeSelector map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: nodeSelector,
					Containers: []corev1.Container{{
						Name:  "app",
						Image: "registry.invalid/ferry/e2e-app:1.0", // kwok never pulls images
					}},
				},
			},
		},
	}
}

func condition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// poll calls check until it returns nil, failing the test with check's last
// error after pollTimeout.
func poll(t *testing.T, what string, check func(ctx context.Context) error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, pollTimeout, true,
		func(ctx context.Context) (bool, error) {
			last = check(ctx)
			return last == nil, nil
		})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last check: %v)", what, err, last)
	}
}

// stableFor is how long TestDeploymentsStayAvailable watches.
const stableFor = 3 * time.Minute

// TestDeploymentsStayAvailable: on the test bed, a Deployment that became
// Available stays so, its pods Ready and the Node Ready, for minutes; and
// kube-controller-manager never finds the Node unhealthy. It is the first
// test of the package and parallel: it starts watching, steps aside while
// the other tests run, and afterwards waits only for what remains of
// stableFor.
func TestDeploymentsStayAvailable(t *testing.T) {
	ctx := context.Background()
	ns := f.CreateNamespace(t)
	const replicas = 2
	d := newDeployment(ns, "steady", replicas, nil)
	if _, err := f.Clientset.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Deployment: %v", err)
	}
	poll(t, "Deployment steady to be Available", func(ctx context.Context) error { return steady(ctx, ns, d.Name, replicas) })
	since := time.Now()

	// Watch from now on, while the other tests run.
	var mu sync.Mutex
	var lapses []string
	watchCtx, stop := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-watchCtx.Done():
				return
			case <-tick.C:
			}
			err := steady(watchCtx, ns, d.Name, replicas)
			if err != nil && watchCtx.Err() == nil {
				mu.Lock()
				if len(lapses) < 20 {
					lapses = append(lapses, fmt.Sprintf("after %v: %v", time.Since(since).Round(time.Second), err))
				}
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { stop(); <-watched })
	t.Parallel()

	check := func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(lapses) > 0 {
			return fmt.Errorf("Deployment %s/%s stopped being available:\n%s", ns, d.Name, strings.Join(lapses, "\n"))
		}
		if log, err := os.ReadFile(f.Cluster.LogPath(testbin.KubeControllerManager)); err != nil {
			return err
		} else if bytes.Contains(log, []byte(testcluster.DisruptionMessage)) {
			return fmt.Errorf("kube-controller-manager found every Node not ready (%q in %s)", testcluster.DisruptionMessage, f.Cluster.LogPath(testbin.KubeControllerManager))
		}
		return nil
	}
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(context.Context) (bool, error) {
		if err := check(); err != nil {
			return false, err
		}
		return time.Since(since) >= stableFor, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Deployment %s/%s stayed Available for %v", ns, d.Name, time.Since(since).Round(time.Second))
}

// steady says why the Deployment, its pods or the Node are not available,
// or nil.
func steady(ctx context.Context, ns, name string, replicas int32) error {
	got, err := f.Clientset.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if c := condition(got, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue {
		return fmt.Errorf("Deployment Available condition %+v", c)
	}
	if got.Status.AvailableReplicas != replicas || got.Status.ReadyReplicas != replicas {
		return fmt.Errorf("Deployment: %d available and %d ready replicas, want %d", got.Status.AvailableReplicas, got.Status.ReadyReplicas, replicas)
	}
	pods, err := f.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return err
	}
	for i := range pods.Items {
		if c := podCondition(&pods.Items[i], corev1.PodReady); c == nil || c.Status != corev1.ConditionTrue {
			return fmt.Errorf("pod %s Ready condition %+v", pods.Items[i].Name, c)
		}
	}
	node, err := f.Clientset.CoreV1().Nodes().Get(ctx, f.Cluster.NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
			return fmt.Errorf("Node %s Ready=%s: %s", node.Name, c.Status, c.Message)
		}
	}
	// The Node's heartbeat: kwok renews its Lease every few seconds. A
	// heartbeat that stopped would only turn the Node NotReady after the
	// controller manager's long grace period, later than this test watches,
	// so its age is checked directly.
	lease, err := f.Clientset.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, node.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("Node %s heartbeat: %w", node.Name, err)
	}
	if lease.Spec.RenewTime == nil {
		return fmt.Errorf("Node %s heartbeat: Lease %s/%s was never renewed", node.Name, lease.Namespace, lease.Name)
	}
	if age := time.Since(lease.Spec.RenewTime.Time); age > maxHeartbeatAge {
		return fmt.Errorf("Node %s heartbeat: Lease %s/%s last renewed %v ago, more than %v", node.Name, lease.Namespace, lease.Name, age.Round(time.Second), maxHeartbeatAge)
	}
	return nil
}

// maxHeartbeatAge is the oldest Node Lease renewal steady accepts: three
// lease durations of kwok's (40 s), so a late renewal on a busy machine
// passes and a stopped heartbeat fails well within stableFor.
const maxHeartbeatAge = 2 * time.Minute

func TestDeploymentOnFakeNodeBecomesAvailable(t *testing.T) {
	ctx := context.Background()
	ns := f.CreateNamespace(t)
	const replicas = 2
	d := newDeployment(ns, "web", replicas, nil)
	if _, err := f.Clientset.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Deployment: %v", err)
	}

	poll(t, "Deployment web to be Available", func(ctx context.Context) error {
		got, err := f.Clientset.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c := condition(got, appsv1.DeploymentAvailable)
		if c == nil || c.Status != corev1.ConditionTrue {
			return fmt.Errorf("Available condition %+v", c)
		}
		if got.Status.AvailableReplicas != replicas || got.Status.UpdatedReplicas != replicas {
			return fmt.Errorf("available %d, updated %d, want %d", got.Status.AvailableReplicas, got.Status.UpdatedReplicas, replicas)
		}
		return nil
	})

	pods, err := f.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatalf("listing pods: %v", err)
	}
	running := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Spec.NodeName != f.Cluster.NodeName {
			t.Errorf("pod %s on node %q, want %q", p.Name, p.Spec.NodeName, f.Cluster.NodeName)
		}
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s phase %s, want Running", p.Name, p.Status.Phase)
		}
		if c := podCondition(&p, corev1.PodReady); c == nil || c.Status != corev1.ConditionTrue {
			t.Errorf("pod %s Ready condition %+v, want True", p.Name, c)
		}
		running++
	}
	if running != replicas {
		t.Errorf("%d pods, want %d", running, replicas)
	}

	out, err := f.Kubectl(t, "rollout", "status", "deployment/"+d.Name, "-n", ns, "--timeout=3m")
	if err != nil {
		t.Fatalf("kubectl rollout status: %v\n%s", err, out)
	}
	if !strings.Contains(out, "successfully rolled out") {
		t.Errorf("kubectl rollout status output %q, want it to say the deployment successfully rolled out", out)
	}
}

func TestUnschedulableDeploymentStaysUnavailable(t *testing.T) {
	ctx := context.Background()
	ns := f.CreateNamespace(t)
	d := newDeployment(ns, "stuck", 1, map[string]string{"ferry.dev/e2e-no-such-node": "true"})
	d.Spec.ProgressDeadlineSeconds = ptr.To[int32](5)
	if _, err := f.Clientset.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Deployment: %v", err)
	}

	// The scheduler explains on the pod why it cannot place it.
	var scheduled *corev1.PodCondition
	poll(t, "the pod to be reported unschedulable", func(ctx context.Context) error {
		pods, err := f.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=stuck"})
		if err != nil {
			return err
		}
		for i := range pods.Items {
			if c := podCondition(&pods.Items[i], corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse {
				scheduled = c
				return nil
			}
		}
		return fmt.Errorf("%d pods, none with PodScheduled=False", len(pods.Items))
	})
	if scheduled.Reason != corev1.PodReasonUnschedulable {
		t.Errorf("PodScheduled reason %q, want %q", scheduled.Reason, corev1.PodReasonUnschedulable)
	}
	if want := "didn't match Pod's node affinity/selector"; !strings.Contains(scheduled.Message, want) {
		t.Errorf("PodScheduled message %q, want it to contain %q", scheduled.Message, want)
	}

	// The Deployment never becomes Available and, past its deadline, reports
	// that it stopped progressing.
	var got *appsv1.Deployment
	poll(t, "Deployment stuck to exceed its progress deadline", func(ctx context.Context) error {
		var err error
		got, err = f.Clientset.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c := condition(got, appsv1.DeploymentProgressing); c == nil || c.Reason != "ProgressDeadlineExceeded" {
			return fmt.Errorf("Progressing condition %+v", c)
		}
		return nil
	})
	tests := []struct {
		condition  appsv1.DeploymentConditionType
		wantStatus corev1.ConditionStatus
		wantReason string
	}{
		{appsv1.DeploymentProgressing, corev1.ConditionFalse, "ProgressDeadlineExceeded"},
		{appsv1.DeploymentAvailable, corev1.ConditionFalse, "MinimumReplicasUnavailable"},
	}
	for _, tt := range tests {
		c := condition(got, tt.condition)
		if c == nil {
			t.Errorf("no %s condition in %+v", tt.condition, got.Status.Conditions)
			continue
		}
		if c.Status != tt.wantStatus || c.Reason != tt.wantReason {
			t.Errorf("%s = %s/%s (%s), want %s/%s", tt.condition, c.Status, c.Reason, c.Message, tt.wantStatus, tt.wantReason)
		}
	}
	if got.Status.AvailableReplicas != 0 {
		t.Errorf("available replicas %d, want 0", got.Status.AvailableReplicas)
	}

	out, err := f.Kubectl(t, "rollout", "status", "deployment/"+d.Name, "-n", ns, "--timeout=1m")
	if err == nil {
		t.Fatalf("kubectl rollout status succeeded on a Deployment that cannot be scheduled:\n%s", out)
	}
	if !strings.Contains(out, "exceeded its progress deadline") {
		t.Errorf("kubectl rollout status output %q, want it to report the exceeded progress deadline", out)
	}
}
