package install

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func blameTemplate(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "op"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: image}}},
	}
}

func blameDeploymentObject() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "op", Namespace: "ns", UID: "d", Generation: 2},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(int32(2)), Template: blameTemplate("op:v2")},
		Status:     appsv1.DeploymentStatus{ObservedGeneration: 2},
	}
}

func blameReplicaSet(uid, image, hash string) appsv1.ReplicaSet {
	t := blameTemplate(image)
	t.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	return appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "op-" + hash, Namespace: "ns", UID: types.UID(uid),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "op", UID: "d", Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Template: t},
	}
}

type podOpt func(*corev1.Pod)

func blamePod(name, rs, node string, opts ...podOpt) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "op-" + rs, UID: types.UID(rs), Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
		}},
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func unready(p *corev1.Pod) {
	p.Status.Conditions[1] = corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", Message: "containers with unready status: [manager]"}
}

func waiting(reason string) podOpt {
	return func(p *corev1.Pod) {
		unready(p)
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "manager", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "back-off"}}}}
	}
}

func exited(code int32) podOpt {
	return func(p *corev1.Pod) {
		unready(p)
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "manager", RestartCount: 3, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: code}}}}
	}
}

func unschedulable(p *corev1.Pod) {
	p.Status.Phase = corev1.PodPending
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes are available: 3 Insufficient memory"}}
}

func terminating(p *corev1.Pod) {
	p.DeletionTimestamp = &metav1.Time{}
}

func node(name string, ready corev1.ConditionStatus, taints ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if ready != "" {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, Reason: "KubeletNotReady", Message: "PLEG is not healthy"}}
		if ready == corev1.ConditionTrue {
			n.Status.Conditions[0].Reason, n.Status.Conditions[0].Message = "KubeletReady", "kubelet is posting ready status"
		}
	}
	for _, t := range taints {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: t, Effect: corev1.TaintEffectNoSchedule})
	}
	return n
}

func nodes(ns ...*corev1.Node) map[string]*corev1.Node {
	m := map[string]*corev1.Node{}
	for _, n := range ns {
		m[n.Name] = n
	}
	return m
}

func TestBlameDeployment(t *testing.T) {
	newRS, oldRS := blameReplicaSet("new", "op:v2", "bbb"), blameReplicaSet("old", "op:v1", "aaa")
	both := []appsv1.ReplicaSet{oldRS, newRS}
	healthy := nodes(node("n1", corev1.ConditionTrue), node("n2", corev1.ConditionTrue))
	tests := []struct {
		name   string
		d      func(*appsv1.Deployment)
		rss    []appsv1.ReplicaSet
		pods   []corev1.Pod
		nodes  map[string]*corev1.Node
		want   HealthBlame
		substr []string
	}{
		{
			name:   "new pods on a NotReady node",
			rss:    both,
			pods:   []corev1.Pod{blamePod("op-bbb-1", "new", "n1", waiting("CrashLoopBackOff")), blamePod("op-aaa-1", "old", "n2")},
			nodes:  nodes(node("n1", corev1.ConditionFalse, corev1.TaintNodeNotReady), node("n2", corev1.ConditionTrue)),
			want:   BlameCluster,
			substr: []string{"pod op-bbb-1 is on node n1: Ready False (KubeletNotReady: PLEG is not healthy), tainted node.kubernetes.io/not-ready:NoSchedule"},
		},
		{
			name:   "new pods on an unreachable node whose status is Unknown",
			rss:    both,
			pods:   []corev1.Pod{blamePod("op-bbb-1", "new", "n1", unready)},
			nodes:  nodes(node("n1", corev1.ConditionUnknown, corev1.TaintNodeUnreachable)),
			want:   BlameCluster,
			substr: []string{"node n1: Ready Unknown", "node.kubernetes.io/unreachable"},
		},
		{
			name:   "tainted unreachable though the last Ready said True",
			rss:    both,
			pods:   []corev1.Pod{blamePod("op-bbb-1", "new", "n1", unready)},
			nodes:  nodes(node("n1", corev1.ConditionTrue, corev1.TaintNodeUnreachable)),
			want:   BlameCluster,
			substr: []string{"node n1: Ready True", "tainted node.kubernetes.io/unreachable:NoSchedule"},
		},
		{
			name:   "node that has not reported Ready",
			rss:    both,
			pods:   []corev1.Pod{blamePod("op-bbb-1", "new", "n1", unready)},
			nodes:  nodes(node("n1", "")),
			want:   BlameCluster,
			substr: []string{"node n1: has not reported Ready"},
		},
		{
			name:   "node gone",
			rss:    both,
			pods:   []corev1.Pod{blamePod("op-bbb-1", "new", "n9", unready)},
			nodes:  map[string]*corev1.Node{"n9": nil},
			want:   BlameCluster,
			substr: []string{"pod op-bbb-1 is on node n9, which no longer exists"},
		},
		{
			name:   "crash loop on a healthy node",
			rss:    both,
			pods:   []corev1.Pod{blamePod("op-bbb-1", "new", "n1", waiting("CrashLoopBackOff")), blamePod("op-aaa-1", "old", "n2")},
			nodes:  healthy,
			want:   BlameRevision,
			substr: []string{"the new version fails: pod op-bbb-1 container manager CrashLoopBackOff: back-off on node n1"},
		},
		{
			name:   "non-zero exit",
			rss:    both,
			pods:   []corev1.Pod{blamePod("op-bbb-1", "new", "n1", exited(2))},
			nodes:  healthy,
			want:   BlameRevision,
			substr: []string{"container manager terminated: Error (exit code 2)"},
		},
		{
			name:   "image cannot be pulled",
			rss:    both,
			pods:   []corev1.Pod{blamePod("op-bbb-1", "new", "n1", waiting("ImagePullBackOff")), blamePod("op-aaa-1", "old", "n1")},
			nodes:  healthy,
			want:   BlameRevision,
			substr: []string{"ImagePullBackOff"},
		},
		{
			name:   "unschedulable",
			rss:    both,
			pods:   []corev1.Pod{blamePod("op-bbb-1", "new", "", unschedulable), blamePod("op-aaa-1", "old", "n1")},
			nodes:  healthy,
			want:   BlameRevision,
			substr: []string{"pod op-bbb-1 unschedulable: 0/3 nodes are available: 3 Insufficient memory"},
		},
		{
			name:   "not ready on a healthy node",
			rss:    both,
			pods:   []corev1.Pod{blamePod("op-bbb-1", "new", "n1", unready), blamePod("op-aaa-1", "old", "n2")},
			nodes:  healthy,
			want:   BlameRevision,
			substr: []string{"pod op-bbb-1 not ready: containers with unready status: [manager] on node n1"},
		},
		{
			name:   "one pod on a NotReady node, another crash-looping on a healthy one",
			rss:    both,
			pods:   []corev1.Pod{blamePod("op-bbb-1", "new", "n1", unready), blamePod("op-bbb-2", "new", "n2", waiting("CrashLoopBackOff"))},
			nodes:  nodes(node("n1", corev1.ConditionFalse), node("n2", corev1.ConditionTrue)),
			want:   BlameRevision,
			substr: []string{"op-bbb-2 container manager CrashLoopBackOff"},
		},
		{
			name: "previous version's pods just as unready",
			rss:  both,
			pods: []corev1.Pod{
				blamePod("op-bbb-1", "new", "n1", waiting("CrashLoopBackOff")),
				blamePod("op-aaa-1", "old", "n2", waiting("CrashLoopBackOff")),
			},
			nodes:  healthy,
			want:   BlameCluster,
			substr: []string{"the previous version's pods are just as unready (1/1 not ready: pod op-aaa-1 container manager CrashLoopBackOff", "as the new version's (1/1"},
		},
		{
			name: "previous version's pods less unready",
			rss:  both,
			pods: []corev1.Pod{
				blamePod("op-bbb-1", "new", "n1", waiting("CrashLoopBackOff")),
				blamePod("op-aaa-1", "old", "n2", waiting("CrashLoopBackOff")),
				blamePod("op-aaa-2", "old", "n2"),
			},
			nodes:  healthy,
			want:   BlameRevision,
			substr: []string{"the new version fails"},
		},
		{
			name: "previous version's terminating pods do not count",
			rss:  both,
			pods: []corev1.Pod{
				blamePod("op-bbb-1", "new", "n1", waiting("CrashLoopBackOff")),
				blamePod("op-aaa-1", "old", "n2", unready, terminating),
			},
			nodes:  healthy,
			want:   BlameRevision,
			substr: []string{"the new version fails"},
		},
		{
			name:   "deployment controller has not acted: no evidence against the cluster",
			d:      func(d *appsv1.Deployment) { d.Status.ObservedGeneration = 1 },
			rss:    []appsv1.ReplicaSet{oldRS},
			pods:   []corev1.Pod{blamePod("op-aaa-1", "old", "n1")},
			nodes:  healthy,
			want:   BlameRevision,
			substr: []string{"no ReplicaSet of the new version: the deployment controller has not acted on generation 2 (observed 1)"},
		},
		{
			name:   "deployment controller has not acted and the previous version's pods are on a NotReady node",
			d:      func(d *appsv1.Deployment) { d.Status.ObservedGeneration = 1 },
			rss:    []appsv1.ReplicaSet{oldRS},
			pods:   []corev1.Pod{blamePod("op-aaa-1", "old", "n1", unready)},
			nodes:  nodes(node("n1", corev1.ConditionFalse)),
			want:   BlameCluster,
			substr: []string{"pod op-aaa-1 is on node n1: Ready False"},
		},
		{
			name: "new pods ready, an old pod stuck terminating on an unreachable node",
			rss:  both,
			pods: []corev1.Pod{
				blamePod("op-bbb-1", "new", "n1"),
				blamePod("op-aaa-1", "old", "n2", unready, terminating),
			},
			nodes:  nodes(node("n1", corev1.ConditionTrue), node("n2", corev1.ConditionUnknown, corev1.TaintNodeUnreachable)),
			want:   BlameCluster,
			substr: []string{"the previous version's pods are stuck on nodes that are not ready: pod op-aaa-1 is on node n2: Ready Unknown"},
		},
		{
			name: "new pods cannot be created",
			d: func(d *appsv1.Deployment) {
				d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: `pods "op-bbb-" is forbidden: exceeded quota.`}}
			},
			rss:    both,
			pods:   []corev1.Pod{blamePod("op-aaa-1", "old", "n1")},
			nodes:  healthy,
			want:   BlameRevision,
			substr: []string{"cannot be created: FailedCreate: pods \"op-bbb-\" is forbidden: exceeded quota"},
		},
		{
			name:   "no ReplicaSet of the new version and no evidence against the cluster",
			rss:    []appsv1.ReplicaSet{oldRS},
			pods:   []corev1.Pod{blamePod("op-aaa-1", "old", "n1")},
			nodes:  healthy,
			want:   BlameRevision,
			substr: []string{"no ReplicaSet of the new version"},
		},
		{
			name: "ReplicaSets and pods of another Deployment are not judged",
			rss: []appsv1.ReplicaSet{newRS, func() appsv1.ReplicaSet {
				rs := blameReplicaSet("other", "op:v1", "ccc")
				rs.OwnerReferences[0].UID = "someone-else"
				return rs
			}()},
			pods: []corev1.Pod{
				blamePod("op-bbb-1", "new", "n1", waiting("CrashLoopBackOff")),
				blamePod("other-1", "other", "n2", waiting("CrashLoopBackOff")),
			},
			nodes:  healthy,
			want:   BlameRevision,
			substr: []string{"op-bbb-1"},
		},
		{
			name:  "node not read counts as healthy",
			rss:   both,
			pods:  []corev1.Pod{blamePod("op-bbb-1", "new", "n7", unready)},
			nodes: healthy,
			want:  BlameRevision,
		},
		{
			name: "many pods on bad nodes are summarized",
			rss:  both,
			pods: []corev1.Pod{
				blamePod("op-bbb-1", "new", "n1", unready), blamePod("op-bbb-2", "new", "n1", unready),
				blamePod("op-bbb-3", "new", "n1", unready), blamePod("op-bbb-4", "new", "n1", unready),
				blamePod("op-bbb-5", "new", "n1", unready),
			},
			nodes:  nodes(node("n1", corev1.ConditionFalse)),
			want:   BlameCluster,
			substr: []string{"op-bbb-3", "; and 2 more"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := blameDeploymentObject()
			if tt.d != nil {
				tt.d(d)
			}
			got, msg := blameDeployment(deploymentPods{deployment: d, replicaSets: tt.rss, pods: tt.pods, nodes: tt.nodes})
			if got != tt.want {
				t.Errorf("blame = %q, want %q (%s)", got, tt.want, msg)
			}
			for _, s := range tt.substr {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q does not contain %q", msg, s)
				}
			}
			if msg == "" {
				t.Error("no message")
			}
		})
	}
}

func TestEqualIgnoreHash(t *testing.T) {
	a, b := blameTemplate("op:v2"), blameTemplate("op:v2")
	b.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = "bbb"
	if !equalIgnoreHash(&a, &b) {
		t.Error("templates differing only in pod-template-hash are not equal")
	}
	if a.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != "" || b.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != "bbb" {
		t.Error("equalIgnoreHash changed its arguments")
	}
	c := blameTemplate("op:v1")
	if equalIgnoreHash(&a, &c) {
		t.Error("templates of different images are equal")
	}
}
