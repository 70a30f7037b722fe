package install

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// unhealthyNodeTaints are the taints the node lifecycle controller puts on
// a node whose kubelet is not ready or stopped reporting: pods there are not
// ready because of the node, whatever version they run.
var unhealthyNodeTaints = []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable}

// maxNodesRead bounds how many nodes one Deployment's health reads: the
// nodes of its unready pods, by name.
const maxNodesRead = 16

// deploymentPods is what blameDeployment judges: a Deployment that is not
// healthy, its ReplicaSets, the pods its selector selects and the nodes of
// the unready ones.
type deploymentPods struct {
	deployment  *appsv1.Deployment
	replicaSets []appsv1.ReplicaSet
	pods        []corev1.Pod
	// nodes holds the nodes read, by name; a nil entry is a node that does
	// not exist. A node not in the map was not read and counts as healthy.
	nodes map[string]*corev1.Node
}

// blameDeployment decides who is to blame for an unhealthy Deployment. It
// is BlameCluster only with evidence naming a node or the previous version:
// every unready pod of the new version sits on a node that is not ready,
// unreachable or gone; the pods of the previous versions are just as
// unready; or the new version's pods are ready and only pods of a previous
// version, stuck on such a node, are left. Everything else, pods that
// cannot be scheduled, cannot pull their image, exit with an error,
// crash-loop or are not ready on a healthy node, and a Deployment the
// deployment controller has not acted on (no evidence against a node), is
// BlameRevision. The message says why, naming the pod and node.
func blameDeployment(in deploymentPods) (HealthBlame, string) {
	d := in.deployment
	newRS, oldRS := splitReplicaSets(d, in.replicaSets)
	var newPods, oldPods []*corev1.Pod
	for i := range in.pods {
		p := &in.pods[i]
		owner := controllerUID(p.OwnerReferences)
		switch {
		case newRS != nil && owner == newRS.UID:
			newPods = append(newPods, p)
		case oldRS[owner]:
			oldPods = append(oldPods, p)
		}
	}
	sort.Slice(newPods, func(i, j int) bool { return newPods[i].Name < newPods[j].Name })
	sort.Slice(oldPods, func(i, j int) bool { return oldPods[i].Name < oldPods[j].Name })

	var onBadNodes, failing []string
	newUnready := 0
	for _, p := range newPods {
		if p.DeletionTimestamp != nil || podReady(p) {
			continue
		}
		newUnready++
		// A node that is not ready stops reporting its pods: what their
		// status says is stale, so the node is judged first.
		if why := nodeProblem(p, in.nodes); why != "" {
			onBadNodes = append(onBadNodes, why)
			continue
		}
		why := podProblem(p)
		if why == "" {
			why = "pod " + p.Name + " not ready"
		}
		if p.Spec.NodeName != "" && !strings.Contains(why, "unschedulable") && !strings.Contains(why, "not scheduled") {
			why += " on node " + p.Spec.NodeName
		}
		failing = append(failing, why)
	}
	if len(failing) == 0 && len(onBadNodes) > 0 {
		return BlameCluster, "the new version's pods are not ready because of their nodes: " + summarize(onBadNodes)
	}
	if len(failing) > 0 {
		if oldUnready, oldTotal, why := unreadyOld(oldPods, in.nodes); oldTotal > 0 && oldUnready*len(newPods) >= newUnready*oldTotal {
			return BlameCluster, fmt.Sprintf("the previous version's pods are just as unready (%d/%d not ready: %s) as the new version's (%d/%d: %s)",
				oldUnready, oldTotal, why, newUnready, len(newPods), summarize(failing))
		}
		return BlameRevision, "the new version fails: " + summarize(failing)
	}
	// Every pod of the new version that exists is ready.
	for i := range d.Status.Conditions {
		c := &d.Status.Conditions[i]
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			return BlameRevision, fmt.Sprintf("the new version's pods cannot be created: %s: %s", c.Reason, strings.TrimSuffix(c.Message, "."))
		}
	}
	var stuck []string
	for _, p := range oldPods {
		if why := nodeProblem(p, in.nodes); why != "" && (p.DeletionTimestamp != nil || !podReady(p)) {
			stuck = append(stuck, why)
		}
	}
	if len(stuck) > 0 {
		return BlameCluster, "no pod of the new version is unready, and the previous version's pods are stuck on nodes that are not ready: " + summarize(stuck)
	}
	if newRS == nil {
		if d.Status.ObservedGeneration < d.Generation {
			return BlameRevision, fmt.Sprintf("no ReplicaSet of the new version: the deployment controller has not acted on generation %d (observed %d)", d.Generation, d.Status.ObservedGeneration)
		}
		return BlameRevision, "no ReplicaSet of the new version"
	}
	return BlameRevision, fmt.Sprintf("%d pods of the new version, none unready, and the Deployment is not available", len(newPods))
}

// splitReplicaSets finds the Deployment's ReplicaSet of its current pod
// template, as the deployment controller does (the template equal but for
// the pod-template-hash label), and the UIDs of its other ReplicaSets.
func splitReplicaSets(d *appsv1.Deployment, all []appsv1.ReplicaSet) (*appsv1.ReplicaSet, map[types.UID]bool) {
	var newRS *appsv1.ReplicaSet
	old := map[types.UID]bool{}
	for i := range all {
		rs := &all[i]
		if controllerUID(rs.OwnerReferences) != d.UID {
			continue
		}
		if newRS == nil && equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		old[rs.UID] = true
	}
	return newRS, old
}

// equalIgnoreHash compares pod templates, leaving out the pod-template-hash
// label the deployment controller adds to its ReplicaSets' templates.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(b.Labels) == 0 {
		b.Labels = nil
	}
	return apiequality.Semantic.DeepEqual(a, b)
}

func controllerUID(refs []metav1.OwnerReference) types.UID {
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			return r.UID
		}
	}
	return ""
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodeProblem says why the node of p cannot run it, or "" when p is not
// on a node, its node was not read, or the node is healthy.
func nodeProblem(p *corev1.Pod, nodes map[string]*corev1.Node) string {
	name := p.Spec.NodeName
	if name == "" {
		return ""
	}
	n, read := nodes[name]
	if !read {
		return ""
	}
	if n == nil {
		return fmt.Sprintf("pod %s is on node %s, which no longer exists", p.Name, name)
	}
	ready := false
	var why string
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		ready = c.Status == corev1.ConditionTrue
		why = fmt.Sprintf("Ready %s", c.Status)
		if c.Reason != "" || c.Message != "" {
			why += fmt.Sprintf(" (%s: %s)", c.Reason, strings.TrimSuffix(c.Message, "."))
		}
	}
	if why == "" {
		why = "has not reported Ready"
	}
	var taints []string
	for _, t := range n.Spec.Taints {
		for _, bad := range unhealthyNodeTaints {
			if t.Key == bad {
				taints = append(taints, fmt.Sprintf("%s:%s", t.Key, t.Effect))
			}
		}
	}
	if ready && len(taints) == 0 {
		return ""
	}
	if len(taints) > 0 {
		why += ", tainted " + strings.Join(taints, ", ")
	}
	return fmt.Sprintf("pod %s is on node %s: %s", p.Name, name, why)
}

// unreadyOld counts the pods of previous versions that are not ready and
// says why. Terminating pods are being replaced, and do not count.
func unreadyOld(pods []*corev1.Pod, nodes map[string]*corev1.Node) (unready, total int, why string) {
	var reasons []string
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		total++
		if podReady(p) {
			continue
		}
		unready++
		r := nodeProblem(p, nodes)
		if r == "" {
			r = podProblem(p)
		}
		if r == "" {
			r = "pod " + p.Name + " not ready"
		}
		reasons = append(reasons, r)
	}
	return unready, total, summarize(reasons)
}

// summarize joins at most maxPodsReported reasons.
func summarize(reasons []string) string {
	if len(reasons) > maxPodsReported {
		return strings.Join(reasons[:maxPodsReported], "; ") + fmt.Sprintf("; and %d more", len(reasons)-maxPodsReported)
	}
	return strings.Join(reasons, "; ")
}
