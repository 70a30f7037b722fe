package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// floorFieldManager writes the floor's objects.
const floorFieldManager = "installerbench-floor"

// ferryMetadataPrefix marks the labels and annotations the installer adds;
// the floor's copies leave them out, so that the installer's caches and
// watches would not see them even if it ran.
const ferryMetadataPrefix = "operators.ferry.dev/"

// floor copies what the installer wrote for the Subscription of namespace
// from (its inventory) into N fresh namespaces with an admin client and
// waits until every copied Deployment is Available. The CRD is left out:
// it is cluster-wide and exists already; so is the tenant fixture, which
// is the installer's identity, not the operator's install.
func (b *bench) floor(ctx context.Context, from string) error {
	var sub v1alpha1.Subscription
	if err := b.client.Get(ctx, types.NamespacedName{Namespace: from, Name: subscriptionName}, &sub); err != nil {
		return err
	}
	var templates []*unstructured.Unstructured
	var kinds []string
	for _, ref := range sub.Status.Inventory {
		if ref.Kind == "CustomResourceDefinition" {
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: ref.Group, Version: ref.Version, Kind: ref.Kind})
		if err := b.client.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, u); err != nil {
			return fmt.Errorf("the floor's template %s %s/%s: %w", ref.Kind, ref.Namespace, ref.Name, err)
		}
		templates = append(templates, template(u))
		kinds = append(kinds, ref.Kind)
	}
	deployments := 0
	for _, k := range kinds {
		if k == "Deployment" {
			deployments++
		}
	}
	if deployments == 0 {
		return fmt.Errorf("the inventory of Subscription %s/%s holds no Deployment: %v", from, subscriptionName, sub.Status.Inventory)
	}
	b.res.floorObjects = strings.Join(kinds, ", ")
	floorNS := namespaces(floorNamespaceFormat, b.c.n)
	logf("floor: %d namespaces", b.c.n)
	err := parallel(ctx, b.c.workers, floorNS, func(ctx context.Context, ns string) error {
		return b.client.Create(ctx, newNamespace(ns))
	})
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	logf("floor: applying %s into each, %d namespaces at a time", b.res.floorObjects, b.c.workers)
	start := time.Now()
	err = parallel(ctx, b.c.workers, floorNS, func(ctx context.Context, ns string) error {
		for _, t := range templates {
			u := t.DeepCopy()
			u.Object = replaceStrings(u.Object, from, ns).(map[string]any)
			if err := b.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(floorFieldManager), client.ForceOwnership); err != nil {
				return fmt.Errorf("floor: applying %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, ns := range floorNS {
		want[ns] = true
	}
	err = b.poll(ctx, "every floor Deployment to be Available", b.c.phaseTimeout, func(ctx context.Context) (bool, string, error) {
		var list appsv1.DeploymentList
		if err := b.client.List(ctx, &list); err != nil {
			return false, err.Error(), nil //nolint:nilerr // a failed list is retried until the deadline, which names it
		}
		available := 0
		for i := range list.Items {
			d := &list.Items[i]
			if want[d.Namespace] && deploymentAvailable(d) {
				available++
			}
		}
		total := deployments * b.c.n
		return available == total, fmt.Sprintf("%d of %d Available", available, total), nil
	})
	if err != nil {
		return err
	}
	b.res.floor = time.Since(start)
	b.res.floorLoad = loadAverage()
	logf("floor: every Deployment Available after %.1f s", b.res.floor.Seconds())
	return nil
}

// deploymentAvailable is what the installer's health gate and kubectl
// rollout status ask: the controller saw the current generation, every
// replica is updated and available.
func deploymentAvailable(d *appsv1.Deployment) bool {
	if d.Status.ObservedGeneration < d.Generation {
		return false
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if d.Status.UpdatedReplicas < want || d.Status.AvailableReplicas < want {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// template is a live object reduced to what an apply sends: no status,
// no server-set metadata, none of Ferry's labels and annotations.
func template(live *unstructured.Unstructured) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	for k, v := range live.Object {
		if k != "metadata" && k != "status" {
			u.Object[k] = v
		}
	}
	u.SetAPIVersion(live.GetAPIVersion())
	u.SetKind(live.GetKind())
	u.SetName(live.GetName())
	u.SetNamespace(live.GetNamespace())
	u.SetLabels(withoutFerry(live.GetLabels()))
	u.SetAnnotations(withoutFerry(live.GetAnnotations()))
	if u.GetKind() == "Deployment" {
		// Ferry's labels on the pod template and selector stay: they are
		// part of the operator's rendered Deployment.
		unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	}
	return u
}

func withoutFerry(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if !strings.HasPrefix(k, ferryMetadataPrefix) && k != "kubectl.kubernetes.io/last-applied-configuration" {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// replaceStrings replaces old with new in every string of a JSON-like
// value: the namespace in metadata, in the subjects of bindings, in names
// of cluster-scoped objects and in the pod template's target namespaces.
func replaceStrings(v any, old, new string) any {
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, old, new)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[strings.ReplaceAll(k, old, new)] = replaceStrings(e, old, new)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = replaceStrings(e, old, new)
		}
		return out
	default:
		return v
	}
}
