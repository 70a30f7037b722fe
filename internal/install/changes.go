package install

import (
	"fmt"
	"reflect"
	"slices"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Changes summarises, one line per change, what installing to over from
// would do to the cluster, for a Manual approval:
//
//	Deployment ns/x: image a -> b
//	Deployment ns/x: env REGION us-east-1 -> eu-west-1
//	ClusterRole y: added
//	CRD z: new version v1
//	ConfigMap ns/q: removed
//
// RBAC objects derived from the CSV are renamed with every version; they are
// matched by what they were derived from, so a rename alone is no change.
// from may be nil (a first install: every object is added).
func Changes(from, to *Rendered) []string {
	var out []string
	olds := map[string]*unstructured.Unstructured{}
	if from != nil {
		for _, o := range from.Objects {
			olds[changeKey(o)] = o
		}
	}
	matched := map[string]bool{}
	if to != nil {
		for _, n := range to.Objects {
			k := changeKey(n)
			o, ok := olds[k]
			desc := describe(Ref(n))
			if !ok {
				out = append(out, desc+": added")
				continue
			}
			matched[k] = true
			out = append(out, objectChanges(desc, o, n)...)
		}
	}
	if from != nil {
		for _, o := range from.Objects {
			if matched[changeKey(o)] {
				continue
			}
			if isCRD(Ref(o)) {
				out = append(out, describe(Ref(o))+": no longer shipped (kept)")
			} else {
				out = append(out, describe(Ref(o))+": removed")
			}
		}
	}
	return out
}

func changeKey(o *unstructured.Unstructured) string {
	if src := o.GetAnnotations()[AnnotationGeneratedFrom]; src != "" {
		return o.GetKind() + "|" + o.GetNamespace() + "|generated|" + src
	}
	return objectKey(Ref(o))
}

func objectChanges(desc string, o, n *unstructured.Unstructured) []string {
	if o.GetAPIVersion() != n.GetAPIVersion() {
		return []string{fmt.Sprintf("%s: apiVersion %s -> %s", desc, o.GetAPIVersion(), n.GetAPIVersion())}
	}
	switch {
	case n.GetKind() == "Deployment":
		return deploymentChanges(desc, o, n)
	case isCRD(Ref(n)):
		return crdChanges(desc, o, n)
	case n.GetKind() == "RoleBinding" || n.GetKind() == "ClusterRoleBinding":
		// The role they point to is renamed with the CSV; compare subjects.
		if !reflect.DeepEqual(o.Object["subjects"], n.Object["subjects"]) {
			return []string{desc + ": subjects changed"}
		}
		return nil
	case n.GetKind() == "Role" || n.GetKind() == "ClusterRole":
		if !reflect.DeepEqual(o.Object["rules"], n.Object["rules"]) || !reflect.DeepEqual(o.Object["aggregationRule"], n.Object["aggregationRule"]) {
			return []string{desc + ": rules changed"}
		}
		return nil
	}
	if !reflect.DeepEqual(content(o), content(n)) {
		return []string{desc + ": changed"}
	}
	return nil
}

// content is an object without the metadata Ferry sets or the server owns.
func content(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy()
	l := c.GetLabels()
	for _, k := range []string{LabelManagedBy, LabelOwnerNamespace, LabelOwnerName, LabelPackage} {
		delete(l, k)
	}
	a := c.GetAnnotations()
	delete(a, AnnotationBundle)
	delete(c.Object, "metadata")
	c.Object["labels"] = l
	c.Object["annotations"] = a
	return c.Object
}

func deploymentChanges(desc string, o, n *unstructured.Unstructured) []string {
	var od, nd appsv1.Deployment
	if runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &od) != nil ||
		runtime.DefaultUnstructuredConverter.FromUnstructured(n.Object, &nd) != nil {
		if !reflect.DeepEqual(content(o), content(n)) {
			return []string{desc + ": changed"}
		}
		return nil
	}
	var out []string
	if !equality.Semantic.DeepEqual(od.Spec.Replicas, nd.Spec.Replicas) {
		out = append(out, fmt.Sprintf("%s: replicas %s -> %s", desc, int32Str(od.Spec.Replicas), int32Str(nd.Spec.Replicas)))
	}
	nc := len(nd.Spec.Template.Spec.Containers)
	oldC := map[string]corev1.Container{}
	for _, c := range append(slices.Clone(od.Spec.Template.Spec.InitContainers), od.Spec.Template.Spec.Containers...) {
		oldC[c.Name] = c
	}
	for _, c := range append(slices.Clone(nd.Spec.Template.Spec.InitContainers), nd.Spec.Template.Spec.Containers...) {
		where := desc + ": "
		if nc > 1 || len(nd.Spec.Template.Spec.InitContainers) > 0 {
			where = desc + ": container " + c.Name + " "
		}
		oc, ok := oldC[c.Name]
		if !ok {
			out = append(out, where+"added")
			continue
		}
		delete(oldC, c.Name)
		if oc.Image != c.Image {
			out = append(out, fmt.Sprintf("%simage %s -> %s", where, oc.Image, c.Image))
		}
		out = append(out, envChanges(where, oc.Env, c.Env)...)
		if !equality.Semantic.DeepEqual(oc.Resources, c.Resources) {
			out = append(out, where+"resources changed")
		}
	}
	for _, name := range sortedContainerNames(oldC) {
		out = append(out, desc+": container "+name+" removed")
	}
	if len(out) == 0 && !equality.Semantic.DeepEqual(od.Spec, nd.Spec) {
		out = append(out, desc+": pod template changed")
	}
	if !equality.Semantic.DeepEqual(od.Labels, nd.Labels) {
		out = append(out, desc+": labels changed")
	}
	return out
}

func sortedContainerNames(m map[string]corev1.Container) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func envChanges(where string, o, n []corev1.EnvVar) []string {
	var out []string
	old := map[string]corev1.EnvVar{}
	for _, e := range o {
		old[e.Name] = e
	}
	for _, e := range n {
		oe, ok := old[e.Name]
		delete(old, e.Name)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%senv %s added", where, e.Name))
		case oe.ValueFrom == nil && e.ValueFrom == nil && oe.Value != e.Value:
			out = append(out, fmt.Sprintf("%senv %s %s -> %s", where, e.Name, oe.Value, e.Value))
		case !equality.Semantic.DeepEqual(oe, e):
			out = append(out, fmt.Sprintf("%senv %s changed", where, e.Name))
		}
	}
	for _, e := range o {
		if _, ok := old[e.Name]; ok {
			out = append(out, fmt.Sprintf("%senv %s removed", where, e.Name))
		}
	}
	return out
}

func int32Str(p *int32) string {
	if p == nil {
		return "default"
	}
	return fmt.Sprint(*p)
}

func crdChanges(desc string, o, n *unstructured.Unstructured) []string {
	var oc, nc apiextensionsv1.CustomResourceDefinition
	if runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &oc) != nil ||
		runtime.DefaultUnstructuredConverter.FromUnstructured(n.Object, &nc) != nil {
		if !reflect.DeepEqual(content(o), content(n)) {
			return []string{desc + ": changed"}
		}
		return nil
	}
	var out []string
	ov := map[string]apiextensionsv1.CustomResourceDefinitionVersion{}
	oldStorage, newStorage := "", ""
	for _, v := range oc.Spec.Versions {
		ov[v.Name] = v
		if v.Storage {
			oldStorage = v.Name
		}
	}
	for _, v := range nc.Spec.Versions {
		if v.Storage {
			newStorage = v.Name
		}
		old, ok := ov[v.Name]
		delete(ov, v.Name)
		if !ok {
			out = append(out, desc+": new version "+v.Name)
			continue
		}
		if old.Served != v.Served {
			if v.Served {
				out = append(out, desc+": version "+v.Name+" served again")
			} else {
				out = append(out, desc+": version "+v.Name+" no longer served")
			}
		}
		if !equality.Semantic.DeepEqual(old.Schema, v.Schema) {
			out = append(out, desc+": schema of "+v.Name+" changed")
		}
	}
	var removed []string
	for name := range ov {
		removed = append(removed, name)
	}
	sort.Strings(removed)
	for _, name := range removed {
		out = append(out, desc+": version "+name+" removed")
	}
	if oldStorage != newStorage {
		out = append(out, fmt.Sprintf("%s: storage version %s -> %s", desc, oldStorage, newStorage))
	}
	if len(out) == 0 {
		ocs, ncs := oc.Spec, nc.Spec
		ocs.Versions, ncs.Versions = nil, nil
		if !equality.Semantic.DeepEqual(ocs, ncs) {
			out = append(out, desc+": changed")
		}
	}
	return out
}
