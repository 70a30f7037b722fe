//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// errProgressDeadline is a rollout that will not finish: the Deployment's
// progress deadline passed.
var errProgressDeadline = errors.New("exceeded its progress deadline")

// rolloutStatus is `kubectl rollout status deployment/NAME` as one check:
// done when the deployment controller has observed the current generation
// and every replica is updated and available, with no replica of an older
// ReplicaSet left (kubectl's DeploymentStatusViewer), and, beyond kubectl,
// no pod of an older ReplicaSet left either, terminating ones included. It
// returns the ReplicaSet of the current template, and what is still missing.
func rolloutStatus(ctx context.Context, c client.Client, ns, name string) (*appsv1.ReplicaSet, string, error) {
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		return nil, "", err
	}
	st := d.Status
	if d.Generation > st.ObservedGeneration {
		return nil, fmt.Sprintf("waiting for deployment spec update to be observed (generation %d, observed %d)", d.Generation, st.ObservedGeneration), nil
	}
	for _, cond := range st.Conditions {
		if cond.Type == appsv1.DeploymentProgressing && cond.Reason == "ProgressDeadlineExceeded" {
			return nil, "", fmt.Errorf("deployment %s/%s %w: %s", ns, name, errProgressDeadline, cond.Message)
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	switch {
	case st.UpdatedReplicas < want:
		return nil, fmt.Sprintf("%d out of %d new replicas have been updated", st.UpdatedReplicas, want), nil
	case st.Replicas > st.UpdatedReplicas:
		return nil, fmt.Sprintf("%d old replicas are pending termination", st.Replicas-st.UpdatedReplicas), nil
	case st.AvailableReplicas < st.UpdatedReplicas:
		return nil, fmt.Sprintf("%d of %d updated replicas are available", st.AvailableReplicas, st.UpdatedReplicas), nil
	}
	rss, err := replicaSetsOf(ctx, c, d)
	if err != nil || len(rss) == 0 {
		return nil, "no ReplicaSet yet", err
	}
	cur := &rss[len(rss)-1]
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, "", err
	}
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, "", err
	}
	for _, p := range pods.Items {
		if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != cur.UID {
			return nil, fmt.Sprintf("pod %s of an older ReplicaSet is still there", p.Name), nil
		}
	}
	return cur, "", nil
}

// replicaSetsOf lists the Deployment's ReplicaSets, oldest revision first:
// the last is the one of the current template.
func replicaSetsOf(ctx context.Context, c client.Client, d *appsv1.Deployment) ([]appsv1.ReplicaSet, error) {
	var list appsv1.ReplicaSetList
	if err := c.List(ctx, &list, client.InNamespace(d.Namespace)); err != nil {
		return nil, err
	}
	var out []appsv1.ReplicaSet
	for _, rs := range list.Items {
		if ref := metav1.GetControllerOf(&rs); ref != nil && ref.UID == d.UID {
			out = append(out, rs)
		}
	}
	revision := func(rs *appsv1.ReplicaSet) int64 {
		n, _ := strconv.ParseInt(rs.Annotations["deployment.kubernetes.io/revision"], 10, 64)
		return n
	}
	sort.Slice(out, func(i, j int) bool { return revision(&out[i]) < revision(&out[j]) })
	return out, nil
}

// waitRolledOut waits, at most within, until Deployment ns/name has rolled
// out (rolloutStatus) and returns the ReplicaSet of its current template.
func waitRolledOut(t *testing.T, c client.Client, ns, name string, within time.Duration) *appsv1.ReplicaSet {
	t.Helper()
	var cur *appsv1.ReplicaSet
	var missing string
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, within, true, func(ctx context.Context) (bool, error) {
		rs, msg, err := rolloutStatus(ctx, c, ns, name)
		cur, missing = rs, msg
		return rs != nil, err
	})
	if err != nil {
		t.Fatalf("deployment %s/%s did not roll out within %s: %v (%s)", ns, name, within, err, missing)
	}
	return cur
}
