package install

import (
	"context"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/kinds"
)

// maxPodsReported bounds how many pods one Deployment's message describes.
const maxPodsReported = 3

// HealthBlame says who is to blame when an install is not healthy: the
// revision itself, which a rollback can cure, or the cluster under it, which
// a rollback cannot.
type HealthBlame string

const (
	// BlameNone means the install is healthy: there is nothing to blame.
	BlameNone HealthBlame = "None"
	// BlameRevision means the revision itself fails: its pods cannot be
	// scheduled, cannot pull their image, exit with an error or crash-loop,
	// or are not ready on a healthy node. Rolling back may cure it.
	BlameRevision HealthBlame = "Revision"
	// BlameCluster means the revision is not healthy because of the cluster:
	// its pods sit on nodes that are NotReady or unreachable, or the pods of
	// the Deployment's previous versions are just as unready. Rolling back
	// would not cure it; the caller should wait and say so.
	BlameCluster HealthBlame = "Cluster"
)

// Health is whether an install is up.
type Health struct {
	// Healthy is true when every Deployment has rolled out and is Available,
	// every CRD is Established and every webhook is registered.
	Healthy bool
	// Message explains what is not healthy and why, read from the cluster,
	// e.g. "deployment ns/x: 0/1 replicas available: pod x-abc unschedulable:
	// 0/1 nodes are available: ...". Objects are separated by "; ".
	Message string
	// Pending names the objects that are not healthy yet, e.g.
	// "Deployment ns/x".
	Pending []string
	// Blame says whom to blame when Healthy is false: BlameRevision or
	// BlameCluster; BlameNone when Healthy is true. The zero value ("") means
	// not judged and is to be treated like BlameRevision.
	Blame HealthBlame
	// BlameMessage says why the blame fell where it did, naming the node
	// and its condition or taint for BlameCluster, e.g. "pod ns/x-abc is on
	// node n1: Ready Unknown (NodeStatusUnknown: Kubelet stopped posting
	// node status)". Empty when Blame is BlameNone.
	BlameMessage string
}

// Health checks every Deployment, CRD and webhook configuration of the
// inventory. A Deployment is healthy when its observedGeneration has caught
// up, all replicas are updated and available and its Available condition
// is True; a CRD when it is Established and, when Ferry gives it a
// conversion webhook, that webhook is registered with a CA bundle; a
// webhook configuration when it exists with a CA bundle on every webhook.
// A webhook not registered yet waits for its Deployment, which is judged on
// its own: it is blamed on the cluster. Other kinds are not checked.
//
// When the install is not healthy, Blame says whom to blame (see
// blameDeployment): BlameCluster when every unhealthy object is explained
// by the cluster (the new pods' nodes are not ready, unreachable or gone,
// the previous version's pods are just as unready, the deployment
// controller has not acted), otherwise BlameRevision. A CRD that is not
// Established is the revision's.
func (a *Applier) Health(ctx context.Context, inventory []v1alpha1.ObjectReference) (Health, error) {
	var msgs, pending, clusterMsgs, revisionMsgs []string
	for _, ref := range inventory {
		var msg string
		var err error
		j := judgement{blame: BlameRevision}
		switch {
		case ref.Group == "apps" && ref.Kind == "Deployment":
			msg, j, err = a.deploymentHealth(ctx, ref)
		case isCRD(ref):
			var ok bool
			var crd *unstructured.Unstructured
			ok, msg, crd, err = a.readCRD(ctx, ref.Name)
			if ok {
				msg = conversionHealth(crd)
				// Registered once the Deployment serving it is available:
				// the Deployment is judged on its own.
				j = judgement{blame: BlameCluster, message: "its conversion webhook waits for its Deployment"}
			} else {
				j.message = "the revision's CRD is not established"
			}
		case rankOfRef(ref) == kinds.RankWebhook:
			msg, err = a.webhookHealth(ctx, ref)
			j = judgement{blame: BlameCluster, message: "the webhook waits for its Deployment"}
		default:
			continue
		}
		if err != nil {
			return Health{}, err
		}
		if msg == "" {
			continue
		}
		msgs = append(msgs, msg)
		pending = append(pending, describe(ref))
		why := describe(ref)
		if j.message != "" {
			why += ": " + j.message
		}
		if j.blame == BlameCluster {
			clusterMsgs = append(clusterMsgs, why)
		} else {
			revisionMsgs = append(revisionMsgs, why)
		}
	}
	h := Health{Healthy: len(pending) == 0, Message: strings.Join(msgs, "; "), Pending: pending}
	switch {
	case h.Healthy:
		h.Blame = BlameNone
	case len(revisionMsgs) > 0:
		// One object failing on its own is enough to blame the revision.
		h.Blame, h.BlameMessage = BlameRevision, strings.Join(revisionMsgs, "; ")
	default:
		h.Blame, h.BlameMessage = BlameCluster, strings.Join(clusterMsgs, "; ")
	}
	return h, nil
}

// judgement is who is to blame for one unhealthy object, and why.
type judgement struct {
	blame   HealthBlame
	message string
}

// deploymentHealth returns "" when the Deployment is rolled out and
// available, otherwise why not, and whom to blame.
func (a *Applier) deploymentHealth(ctx context.Context, ref v1alpha1.ObjectReference) (string, judgement, error) {
	prefix := fmt.Sprintf("deployment %s/%s", ref.Namespace, ref.Name)
	d := &appsv1.Deployment{}
	found, err := a.getTyped(ctx, ref, d)
	if err != nil {
		return "", judgement{}, err
	}
	if !found {
		return prefix + ": not found", judgement{blame: BlameRevision, message: "not found"}, nil
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	var available, progressing, replicaFailure *appsv1.DeploymentCondition
	for i := range st.Conditions {
		c := &st.Conditions[i]
		switch c.Type {
		case appsv1.DeploymentAvailable:
			available = c
		case appsv1.DeploymentProgressing:
			progressing = c
		case appsv1.DeploymentReplicaFailure:
			replicaFailure = c
		}
	}
	var problem string
	switch {
	case st.ObservedGeneration < d.Generation:
		problem = fmt.Sprintf("rollout not yet observed (generation %d, observed %d)", d.Generation, st.ObservedGeneration)
	case st.UpdatedReplicas < want:
		problem = fmt.Sprintf("%d/%d replicas updated", st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		problem = fmt.Sprintf("%d old replicas pending termination", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < want:
		problem = fmt.Sprintf("%d/%d replicas available", st.AvailableReplicas, want)
	case available == nil || available.Status != corev1.ConditionTrue:
		problem = "not Available"
		if available != nil && available.Message != "" {
			problem += " (" + available.Reason + ": " + available.Message + ")"
		}
	default:
		return "", judgement{blame: BlameNone}, nil
	}
	parts := []string{prefix + ": " + problem}
	if progressing != nil && progressing.Status == corev1.ConditionFalse {
		parts = append(parts, fmt.Sprintf("%s: %s", progressing.Reason, strings.TrimSuffix(progressing.Message, ".")))
	}
	if replicaFailure != nil && replicaFailure.Status == corev1.ConditionTrue {
		parts = append(parts, fmt.Sprintf("%s: %s", replicaFailure.Reason, strings.TrimSuffix(replicaFailure.Message, ".")))
	}
	in, err := a.readDeploymentPods(ctx, d)
	if err != nil {
		return "", judgement{}, err
	}
	parts = append(parts, podProblems(in.pods)...)
	blame, why := blameDeployment(in)
	return strings.Join(parts, ": "), judgement{blame: blame, message: why}, nil
}

// Health reads, uncached and never watched, the pods of a Deployment that
// is not healthy, its ReplicaSets, to tell the new version's pods from the
// previous versions', and the nodes of its unready pods, by name, to tell a
// failing version from a failing node.
//
// +kubebuilder:rbac:groups="",resources=pods,verbs=list
// +kubebuilder:rbac:groups=apps,resources=replicasets,verbs=list
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get

// readDeploymentPods reads what blameDeployment judges: the ReplicaSets and
// pods the Deployment's selector selects in its namespace, and the nodes
// (at most maxNodesRead) of the pods that are not ready.
func (a *Applier) readDeploymentPods(ctx context.Context, d *appsv1.Deployment) (deploymentPods, error) {
	in := deploymentPods{deployment: d, nodes: map[string]*corev1.Node{}}
	if d.Spec.Selector == nil {
		return in, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return in, nil //nolint:nilerr // an invalid selector selects no pods; the Deployment's own conditions say more.
	}
	opts := []client.ListOption{client.InNamespace(d.Namespace), client.MatchingLabelsSelector{Selector: sel}}
	if in.pods, err = listTyped[corev1.Pod](ctx, a.Client, "PodList", corev1.SchemeGroupVersion.String(), opts...); err != nil {
		return in, fmt.Errorf("listing pods of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	sort.Slice(in.pods, func(i, j int) bool { return in.pods[i].Name < in.pods[j].Name })
	if in.replicaSets, err = listTyped[appsv1.ReplicaSet](ctx, a.Client, "ReplicaSetList", appsv1.SchemeGroupVersion.String(), opts...); err != nil {
		return in, fmt.Errorf("listing ReplicaSets of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	for i := range in.pods {
		p := &in.pods[i]
		name := p.Spec.NodeName
		if name == "" || (podReady(p) && p.DeletionTimestamp == nil) {
			continue
		}
		if _, read := in.nodes[name]; read || len(in.nodes) >= maxNodesRead {
			continue
		}
		n := &corev1.Node{}
		found, err := a.getTyped(ctx, v1alpha1.ObjectReference{Version: "v1", Kind: "Node", Name: name}, n)
		if err != nil {
			return in, err
		}
		if found {
			in.nodes[name] = n
		} else {
			in.nodes[name] = nil
		}
	}
	return in, nil
}

// listTyped lists objects as unstructured, so that the client's cache is
// not involved, and converts them.
func listTyped[T any](ctx context.Context, c client.Client, listKind, apiVersion string, opts ...client.ListOption) ([]T, error) {
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion(apiVersion)
	list.SetKind(listKind)
	if err := c.List(ctx, list, opts...); err != nil {
		return nil, err
	}
	out := make([]T, len(list.Items))
	for i := range list.Items {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &out[i]); err != nil {
			return nil, fmt.Errorf("reading %s %s: %w", list.Items[i].GetKind(), list.Items[i].GetName(), err)
		}
	}
	return out, nil
}

// podProblems lists why the pods that are not terminating are not ready.
func podProblems(all []corev1.Pod) []string {
	var out []string
	n := 0
	for i := range all {
		p := &all[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		n++
		if msg := podProblem(p); msg != "" {
			out = append(out, msg)
		}
	}
	if len(out) > maxPodsReported {
		out = append(out[:maxPodsReported], fmt.Sprintf("and %d more pods", len(out)-maxPodsReported))
	}
	if n == 0 {
		out = append(out, "no pods")
	}
	return out
}

// podProblem says why one pod is not ready, or "" when it is.
func podProblem(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			if c.Reason == corev1.PodReasonUnschedulable {
				return fmt.Sprintf("pod %s unschedulable: %s", p.Name, c.Message)
			}
			return fmt.Sprintf("pod %s not scheduled: %s: %s", p.Name, c.Reason, c.Message)
		}
	}
	var reasons []string
	for _, group := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range group {
			switch {
			case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "ContainerCreating" && cs.State.Waiting.Reason != "PodInitializing":
				r := fmt.Sprintf("container %s %s", cs.Name, cs.State.Waiting.Reason)
				if cs.State.Waiting.Message != "" {
					r += ": " + cs.State.Waiting.Message
				}
				reasons = append(reasons, r)
			case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
				reasons = append(reasons, fmt.Sprintf("container %s terminated: %s (exit code %d)", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode))
			}
		}
	}
	if len(reasons) > 0 {
		return fmt.Sprintf("pod %s %s", p.Name, strings.Join(reasons, ", "))
	}
	if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
		return fmt.Sprintf("pod %s %s: %s", p.Name, p.Status.Phase, p.Status.Message)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
			if c.Message != "" {
				return fmt.Sprintf("pod %s not ready: %s", p.Name, c.Message)
			}
			return fmt.Sprintf("pod %s not ready", p.Name)
		}
	}
	if p.Status.Phase == corev1.PodPending {
		return fmt.Sprintf("pod %s pending", p.Name)
	}
	return ""
}

// getTyped reads an object as unstructured and converts it into out, so the
// client's scheme needs no typed registration.
func (a *Applier) getTyped(ctx context.Context, ref v1alpha1.ObjectReference, out any) (bool, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvkOf(ref))
	if err := a.Client.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("reading %s: %w", describe(ref), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return false, fmt.Errorf("reading %s: %w", describe(ref), err)
	}
	return true, nil
}
