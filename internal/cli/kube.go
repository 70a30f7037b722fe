package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// listPageSize is the Limit of every list request.
const listPageSize = 500

// maxHintNames bounds the names a NotFoundError suggests.
const maxHintNames = 10

// NotFoundError says that an object the command names does not exist.
type NotFoundError struct {
	// Kind of the object: Subscription, Revision, CatalogSource, package, version.
	Kind string
	// Namespace of the object; empty for cluster-scoped objects.
	Namespace string
	// Name of the object.
	Name string
	// Known lists what does exist, to choose from; may be empty.
	Known []string
	// Where is what was searched, when not the namespace, e.g. `catalog "x"`.
	Where string
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q not found", e.Kind, e.Name)
	switch {
	case e.Where != "":
		fmt.Fprintf(&b, " in %s", e.Where)
	case e.Namespace != "":
		fmt.Fprintf(&b, " in namespace %q", e.Namespace)
	}
	if len(e.Known) > 0 {
		known := e.Known
		more := ""
		if len(known) > maxHintNames {
			more = fmt.Sprintf(" and %d more", len(known)-maxHintNames)
			known = known[:maxHintNames]
		}
		fmt.Fprintf(&b, " (there: %s%s)", strings.Join(known, ", "), more)
	}
	return b.String()
}

// getSubscription reads a Subscription; a missing one is a *NotFoundError
// naming the Subscriptions the namespace has.
func getSubscription(ctx context.Context, c client.Client, ns, name string) (*v1alpha1.Subscription, error) {
	sub := &v1alpha1.Subscription{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sub)
	if apierrors.IsNotFound(err) {
		nf := &NotFoundError{Kind: "Subscription", Namespace: ns, Name: name}
		var list v1alpha1.SubscriptionList
		if c.List(ctx, &list, client.InNamespace(ns), client.Limit(listPageSize)) == nil {
			for _, s := range list.Items {
				nf.Known = append(nf.Known, s.Name)
			}
		}
		return nil, nf
	}
	if err != nil {
		return nil, fmt.Errorf("reading Subscription %s/%s: %w", ns, name, err)
	}
	return sub, nil
}

// listSubscriptions lists the Subscriptions of ns ("" for every
// namespace), sorted by namespace and name, in pages.
func listSubscriptions(ctx context.Context, c client.Client, ns string) ([]v1alpha1.Subscription, error) {
	var out []v1alpha1.Subscription
	opts := []client.ListOption{client.Limit(listPageSize)}
	if ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	cont := ""
	for {
		var list v1alpha1.SubscriptionList
		if err := c.List(ctx, &list, append(opts, client.Continue(cont))...); err != nil {
			return nil, fmt.Errorf("listing Subscriptions: %w", err)
		}
		out = append(out, list.Items...)
		if cont = list.Continue; cont == "" {
			break
		}
	}
	slices.SortFunc(out, func(x, y v1alpha1.Subscription) int {
		if c := strings.Compare(x.Namespace, y.Namespace); c != 0 {
			return c
		}
		return strings.Compare(x.Name, y.Name)
	})
	return out, nil
}

// listRevisions lists the Revisions of a Subscription, by spec.subscription,
// oldest first.
func listRevisions(ctx context.Context, c client.Client, sub *v1alpha1.Subscription) ([]v1alpha1.Revision, error) {
	var out []v1alpha1.Revision
	cont := ""
	for {
		var list v1alpha1.RevisionList
		if err := c.List(ctx, &list, client.InNamespace(sub.Namespace), client.Limit(listPageSize), client.Continue(cont)); err != nil {
			return nil, fmt.Errorf("listing Revisions in namespace %s: %w", sub.Namespace, err)
		}
		for _, r := range list.Items {
			if r.Spec.Subscription == sub.Name {
				out = append(out, r)
			}
		}
		if cont = list.Continue; cont == "" {
			break
		}
	}
	slices.SortFunc(out, func(x, y v1alpha1.Revision) int { return int(x.Spec.Revision - y.Spec.Revision) })
	return out, nil
}

// observedGeneration is the newest generation the installer has written
// status for: the highest observedGeneration of the conditions.
func observedGeneration(sub *v1alpha1.Subscription) int64 {
	var g int64
	for _, c := range sub.Status.Conditions {
		g = max(g, c.ObservedGeneration)
	}
	return g
}

// condition returns the condition of type t, or nil.
func condition(sub *v1alpha1.Subscription, t string) *metav1.Condition {
	return meta.FindStatusCondition(sub.Status.Conditions, t)
}

// summary is the one message that best says what a Subscription is doing
// or why it is stuck.
func summary(sub *v1alpha1.Subscription) string {
	st := sub.Status
	if st.Explanation != "" {
		return st.Explanation
	}
	for _, t := range []string{v1alpha1.TypeProgressing, v1alpha1.TypeCRDUpgradeSafe, v1alpha1.TypeResolved, v1alpha1.TypeCatalogReachable} {
		c := condition(sub, t)
		if c == nil || c.Message == "" {
			continue
		}
		bad := c.Status == metav1.ConditionFalse
		if t == v1alpha1.TypeProgressing {
			bad = c.Status == metav1.ConditionTrue || c.Reason != v1alpha1.ReasonInstalled && c.Reason != v1alpha1.ReasonNoUpgrade && c.Status == metav1.ConditionFalse
		}
		if bad {
			return c.Message
		}
	}
	if c := condition(sub, v1alpha1.TypeRolledBack); c != nil && c.Status == metav1.ConditionTrue {
		return c.Message
	}
	if u := st.AvailableUpgrade; u != nil {
		return fmt.Sprintf("upgrade to %s waits for approval (kubectl ferry approve %s)", u.Version, sub.Name)
	}
	if c := condition(sub, v1alpha1.TypeInstalled); c != nil {
		return c.Message
	}
	return ""
}
