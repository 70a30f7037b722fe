package install_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

const unschedulableMsg = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector"

func TestHealth(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	res := mustApply(ctx, t, render(t, input(t, ns, lighthouse, "1.3.0")), nil)
	prefix := "deployment " + ns + "/" + sa + ": "

	tests := []struct {
		name        string
		setup       func(t *testing.T)
		wantHealthy bool
		want        []string // substrings of Message
	}{
		{
			name:  "rollout not yet observed",
			setup: func(*testing.T) {},
			want:  []string{prefix + "rollout not yet observed (generation 1, observed 0)"},
		},
		{
			name: "unavailable past the progress deadline",
			setup: func(t *testing.T) {
				setDeploymentStatus(ctx, t, ns, func(d *appsv1.Deployment) {
					d.Status = appsv1.DeploymentStatus{
						ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, UnavailableReplicas: 1,
						Conditions: []appsv1.DeploymentCondition{
							{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable", Message: "Deployment does not have minimum availability."},
							{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "` + sa + `-5d8f" has timed out progressing.`},
						},
					}
				})
			},
			want: []string{prefix + "0/1 replicas available", "ProgressDeadlineExceeded: ReplicaSet", "no pods"},
		},
		{
			name: "pod unschedulable",
			setup: func(t *testing.T) {
				createPod(ctx, t, ns, sa+"-abc", corev1.PodStatus{
					Phase: corev1.PodPending,
					Conditions: []corev1.PodCondition{{
						Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: unschedulableMsg,
					}},
				})
			},
			want: []string{prefix + "0/1 replicas available: ProgressDeadlineExceeded: ReplicaSet \"" + sa + "-5d8f\" has timed out progressing: pod " + sa + "-abc unschedulable: " + unschedulableMsg},
		},
		{
			name: "image cannot be pulled",
			setup: func(t *testing.T) {
				deletePod(ctx, t, ns, sa+"-abc")
				createPod(ctx, t, ns, sa+"-def", corev1.PodStatus{
					Phase:      corev1.PodPending,
					Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}},
					ContainerStatuses: []corev1.ContainerStatus{{
						Name: "manager", Image: "registry.example.com/ferry/lighthouse-operator:v1.3.0",
						State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}},
					}},
				})
			},
			want: []string{"pod " + sa + "-def container manager ImagePullBackOff: Back-off pulling image"},
		},
		{
			name: "container crash-looping",
			setup: func(t *testing.T) {
				setPodStatus(ctx, t, ns, sa+"-def", func(p *corev1.Pod) {
					p.Status.Phase = corev1.PodRunning
					p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container"}}
				})
			},
			want: []string{"pod " + sa + "-def container manager CrashLoopBackOff: back-off 40s restarting failed container"},
		},
		{
			name: "running but not ready",
			setup: func(t *testing.T) {
				setPodStatus(ctx, t, ns, sa+"-def", func(p *corev1.Pod) {
					p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
					p.Status.Conditions[1].Message = "containers with unready status: [manager]"
				})
			},
			want: []string{"pod " + sa + "-def not ready: containers with unready status: [manager]"},
		},
		{
			name: "rolled out",
			setup: func(t *testing.T) {
				setDeploymentStatus(ctx, t, ns, func(d *appsv1.Deployment) {
					d.Status = appsv1.DeploymentStatus{
						ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
						Conditions: []appsv1.DeploymentCondition{
							{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
							{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
						},
					}
				})
			},
			wantHealthy: true,
		},
		{
			name: "a new generation not yet rolled out",
			setup: func(t *testing.T) {
				in := input(t, ns, lighthouse, "1.3.0")
				in.Config = &v1alpha1.SubscriptionConfig{Env: []corev1.EnvVar{{Name: "REGION", Value: "eu-west-1"}}}
				res = mustApply(ctx, t, render(t, in), res.Inventory)
			},
			want: []string{prefix + "rollout not yet observed (generation 2, observed 1)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup(t)
			h, err := applier(t, ns).Health(ctx, res.Inventory)
			if err != nil {
				t.Fatalf("Health: %v", err)
			}
			t.Logf("message: %s", h.Message)
			if h.Healthy != tt.wantHealthy {
				t.Fatalf("Healthy = %v (%q), want %v", h.Healthy, h.Message, tt.wantHealthy)
			}
			if tt.wantHealthy {
				if h.Message != "" || len(h.Pending) != 0 {
					t.Errorf("healthy install reports %q, pending %v", h.Message, h.Pending)
				}
				return
			}
			if !slices.Equal(h.Pending, []string{"Deployment " + ns + "/" + sa}) {
				t.Errorf("Pending = %v, want the Deployment", h.Pending)
			}
			for _, w := range tt.want {
				if !strings.Contains(h.Message, w) {
					t.Errorf("Message = %q, want it to say %q", h.Message, w)
				}
			}
		})
	}
}

func TestHealthOfMissingObjects(t *testing.T) {
	ctx := testContext(t)
	inv := []v1alpha1.ObjectReference{
		{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "nowhere", Name: "ghost"},
		{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: "ghosts.ferry.dev"},
		{Version: "v1", Kind: "ConfigMap", Namespace: "nowhere", Name: "not-checked"},
	}
	h, err := applier(t, "").Health(ctx, inv)
	if err != nil {
		t.Fatal(err)
	}
	want := "deployment nowhere/ghost: not found; CRD ghosts.ferry.dev: not found"
	if h.Healthy || h.Message != want || len(h.Pending) != 2 {
		t.Errorf("Health = %+v, want unhealthy with %q", h, want)
	}
}

func setDeploymentStatus(ctx context.Context, t *testing.T, ns string, set func(*appsv1.Deployment)) {
	t.Helper()
	var d appsv1.Deployment
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: sa}, &d); err != nil {
		t.Fatal(err)
	}
	set(&d)
	if err := env.Client.Status().Update(ctx, &d); err != nil {
		t.Fatalf("updating Deployment status: %v", err)
	}
}

// createPod creates a pod the Deployment's selector matches, with status.
func createPod(ctx context.Context, t *testing.T, ns, name string, status corev1.PodStatus) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
			"app.kubernetes.io/name": lighthouse, "control-plane": "controller-manager",
		}},
		Spec: corev1.PodSpec{
			ServiceAccountName:           sa,
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: "manager", Image: "registry.example.com/ferry/lighthouse-operator:v1.3.0"}},
		},
	}
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	p.Status = status
	if err := env.Client.Status().Update(ctx, p); err != nil {
		t.Fatalf("setting pod status: %v", err)
	}
}

func setPodStatus(ctx context.Context, t *testing.T, ns, name string, set func(*corev1.Pod)) {
	t.Helper()
	var p corev1.Pod
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	set(&p)
	if err := env.Client.Status().Update(ctx, &p); err != nil {
		t.Fatalf("setting pod status: %v", err)
	}
}

func deletePod(ctx context.Context, t *testing.T, ns, name string) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := env.Client.Delete(ctx, p, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
}
