package subscription_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// TestWaitingForHealthReadsTheClusterOnEveryRequeue: a revision waiting for
// its health gate is judged from what the cluster says now, on every
// requeue, until its timeout. Pods are not watched, so only the requeue can
// see a pod's problem change; the condition follows it, and nothing is
// rolled back or failed within the timeout.
func TestWaitingForHealthReadsTheClusterOnEveryRequeue(t *testing.T) {
	never := func(*appsv1.Deployment) bool { return true }
	_, c, ns, cat := setup(t, sampleDir(t), never)
	markUnavailable(t, ns, never)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{
		Package: "signal-store", StartingVersion: "1.1.0", HealthTimeout: &metav1.Duration{Duration: time.Hour},
	})
	waiting := func(part string) func(*v1alpha1.Subscription) bool {
		return func(s *v1alpha1.Subscription) bool {
			p := condition(s, v1alpha1.TypeProgressing)
			return p != nil && p.Reason == v1alpha1.ReasonWaitingForHealthy && strings.Contains(p.Message, part)
		}
	}
	waitSub(t, c, ns, "signals", "waiting for its Deployment", waiting("deployment "+ns+"/signal-store-controller-manager"))

	// A pod of the Deployment that cannot pull its image.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "signal-store-controller-manager-abc12",
			Labels: map[string]string{"app.kubernetes.io/name": "signal-store", "control-plane": "controller-manager"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: "example.invalid/signal-store:1.1.0"}}},
	}
	if err := c.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	setWaiting := func(reason, msg string) {
		t.Helper()
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(pod), pod); err != nil {
			t.Fatal(err)
		}
		pod.Status = corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "manager", Image: pod.Spec.Containers[0].Image, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}},
		}}}
		if err := c.Status().Update(context.Background(), pod); err != nil {
			t.Fatal(err)
		}
	}
	setWaiting("ImagePullBackOff", "Back-off pulling image")
	waitSub(t, c, ns, "signals", "telling the image cannot be pulled", waiting("container manager ImagePullBackOff: Back-off pulling image"))
	setWaiting("CrashLoopBackOff", "back-off 10s restarting failed container")
	sub := waitSub(t, c, ns, "signals", "telling the container crash-loops", waiting("container manager CrashLoopBackOff"))
	if sub.Status.State != v1alpha1.StateInstalling || sub.Status.FailedUpgrade != nil || sub.Status.CurrentRevision != 1 {
		t.Errorf("within its timeout the revision is only waited for: state %s, failedUpgrade %+v, revision %d", sub.Status.State, sub.Status.FailedUpgrade, sub.Status.CurrentRevision)
	}
	if got := outcomes(revisionsOf(t, c, ns, "signals")); got != "1:1.1.0:Install:Progressing" {
		t.Errorf("revisions = %s", got)
	}
}
