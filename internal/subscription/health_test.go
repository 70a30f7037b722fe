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

// TestHealthGateFailedWithNothingToReturnTo: a revision that misses its
// health gate with no healthy revision to restore (a first install) or
// that may not be rolled back (rollbackPolicy Never) is marked failed, and
// the Subscription says so; nothing else is applied.
func TestHealthGateFailedWithNothingToReturnTo(t *testing.T) {
	tests := []struct {
		name string
		spec v1alpha1.SubscriptionSpec
		// unready selects the Deployments that never become available.
		unready   func(*appsv1.Deployment) bool
		installed string
		revisions string
	}{
		{
			name:    "first install",
			spec:    v1alpha1.SubscriptionSpec{Package: "signal-store", StartingVersion: "1.1.0"},
			unready: func(*appsv1.Deployment) bool { return true },
			// Installed stays False and nothing else is recorded.
			revisions: "1:1.1.0:Install:Failed",
		},
		{
			name: "upgrade under rollbackPolicy Never",
			spec: v1alpha1.SubscriptionSpec{Package: "lighthouse-operator", Channel: "fast", StartingVersion: "1.3.0",
				RollbackPolicy: v1alpha1.RollbackNever},
			unready:   neverReady,
			installed: "1.3.0",
			revisions: "1:1.3.0:Install:Healthy 2:1.4.0:Upgrade:Failed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c, ns, cat := setup(t, sampleDir(t), tt.unready)
			markUnavailable(t, ns, tt.unready)
			tt.spec.HealthTimeout = &metav1.Duration{Duration: 2 * time.Second}
			create(t, c, ns, "s", cat, tt.spec)
			sub := waitSub(t, c, ns, "s", "failed its health gate", func(s *v1alpha1.Subscription) bool {
				p := condition(s, v1alpha1.TypeProgressing)
				return s.Status.State == v1alpha1.StateFailed && p != nil && p.Reason == v1alpha1.ReasonHealthGateFailed
			})
			if sub.Status.InstalledVersion != tt.installed || sub.Status.FailedUpgrade == nil {
				t.Errorf("installed %q, failedUpgrade %+v", sub.Status.InstalledVersion, sub.Status.FailedUpgrade)
			}
			if r := condition(sub, v1alpha1.TypeReady); r == nil || r.Status != metav1.ConditionFalse {
				t.Errorf("Ready = %+v", r)
			}
			if tt.installed == "" {
				if i := condition(sub, v1alpha1.TypeInstalled); i == nil || i.Status != metav1.ConditionFalse || i.Reason != v1alpha1.ReasonHealthGateFailed {
					t.Errorf("Installed = %+v", i)
				}
			}
			waitEvent(t, c, ns, "s", corev1.EventTypeWarning, v1alpha1.ReasonHealthGateFailed, "did not become healthy within 2s")
			if got := outcomes(revisionsOf(t, c, ns, "s")); got != tt.revisions {
				t.Errorf("revisions = %s, want %s", got, tt.revisions)
			}
		})
	}
}
