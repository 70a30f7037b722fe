package install

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// AnnotationOwner names, exactly, the Subscription ("namespace/name") an
// object was installed for. The owner labels select objects; label values
// are shortened for long names, so ownership is decided by this annotation
// (objects installed before it existed are recognised by their labels).
const AnnotationOwner = "operators.ferry.dev/owner"

// ApplyOption refines Apply.
type ApplyOption func(*applyOptions)

type applyOptions struct {
	adoption v1alpha1.AdoptionPolicy
}

// WithAdoption sets what Apply does with an existing object that no Ferry
// Subscription owns: AdoptionNone (the default) refuses it, AdoptUnmanaged
// takes it over.
func WithAdoption(p v1alpha1.AdoptionPolicy) ApplyOption {
	return func(o *applyOptions) { o.adoption = p }
}

// IsOwner reports whether o was installed by Ferry for owner: by the owner
// annotation when the object has one, else by the owner labels.
func IsOwner(o metav1.Object, owner types.NamespacedName) bool {
	if !managedByFerry(o.GetLabels()) {
		return false
	}
	if v, ok := o.GetAnnotations()[AnnotationOwner]; ok {
		return v == owner.String()
	}
	return ownedBy(o.GetLabels(), owner)
}

// ferryOwner returns the Subscription a Ferry-managed object belongs to, as
// "namespace/name", or "" when Ferry does not manage it.
func ferryOwner(o metav1.Object) string {
	l := o.GetLabels()
	if !managedByFerry(l) {
		return ""
	}
	if v := o.GetAnnotations()[AnnotationOwner]; v != "" {
		return v
	}
	if l[LabelOwnerName] != "" {
		return l[LabelOwnerNamespace] + "/" + l[LabelOwnerName]
	}
	return ""
}

// StampOwner sets the owner labels, the package label and the owner
// annotation on o, whatever the content says: objects restored from a
// revision are labelled for the Subscription applying them, not for
// whoever the stored content names.
func StampOwner(o *unstructured.Unstructured, owner types.NamespacedName, pkg string) {
	l := o.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	for k, v := range OwnerLabels(owner) {
		l[k] = v
	}
	if pkg != "" {
		l[LabelPackage] = LabelValue(pkg)
	}
	o.SetLabels(l)
	a := o.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationOwner] = owner.String()
	o.SetAnnotations(a)
}

// Preflight reads every object of r from the API server (Applier.Reader)
// and reports, before anything is applied, each one that exists and may not
// be changed for r.Owner: one *OwnershipConflictError per object, joined.
// An object may be changed when Ferry installed it for r.Owner; a CRD also
// when Ferry installed it for another Subscription of the same package; any
// object no Ferry Subscription owns only under AdoptUnmanaged.
func (a *Applier) Preflight(ctx context.Context, r *Rendered, opts ...ApplyOption) error {
	var o applyOptions
	for _, opt := range opts {
		opt(&o)
	}
	var errs []error
	for _, obj := range r.Objects {
		ref := Ref(obj)
		cur, err := a.getMeta(ctx, ref)
		switch {
		case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("reading %s to check who owns it: %w", describe(ref), err))
			continue
		}
		if cerr := conflict(cur, ref, r.Owner, r.Package, o.adoption); cerr != nil {
			errs = append(errs, cerr)
		}
	}
	return errors.Join(errs...)
}

// conflict decides whether the live object cur may be changed for owner.
func conflict(cur *metav1.PartialObjectMetadata, ref v1alpha1.ObjectReference, owner types.NamespacedName, pkg string, adoption v1alpha1.AdoptionPolicy) *OwnershipConflictError {
	if IsOwner(cur, owner) {
		return nil
	}
	if other := ferryOwner(cur); other != "" {
		ns, name, _ := strings.Cut(other, "/")
		otherPkg := cur.GetLabels()[LabelPackage]
		if isCRD(ref) && otherPkg != "" && otherPkg == LabelValue(pkg) {
			// CRDs are shared by the Subscriptions of one package.
			return nil
		}
		return &OwnershipConflictError{Object: ref, OwnerNamespace: ns, OwnerName: name, OwnerPackage: otherPkg, CRDOfOtherPackage: isCRD(ref)}
	}
	if adoption == v1alpha1.AdoptionAdoptUnmanaged {
		return nil
	}
	return &OwnershipConflictError{Object: ref, Managers: managersOf(cur), ManagedBy: cur.GetLabels()[LabelManagedBy]}
}

// managersOf lists the field managers of an object, sorted, each once.
func managersOf(o metav1.Object) []string {
	var out []string
	for _, f := range o.GetManagedFields() {
		if f.Manager != "" && !slices.Contains(out, f.Manager) {
			out = append(out, f.Manager)
		}
	}
	sort.Strings(out)
	return out
}
