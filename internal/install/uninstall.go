package install

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/kinds"
)

// UninstallResult is what is left of an install.
type UninstallResult struct {
	// Remaining counts the objects Ferry owns that still exist (some may
	// be terminating). The caller requeues until it is 0.
	Remaining int
}

// UninstallOption refines Uninstall.
type UninstallOption func(*uninstallOptions)

type uninstallOptions struct {
	owner *types.NamespacedName
}

// ForOwner makes Uninstall delete, and count, only objects Ferry installed
// for owner (see IsOwner), instead of every object Ferry manages. Pass it
// whenever the owner is known: it keeps an uninstall from deleting a shared
// CRD that another Subscription applied last.
func ForOwner(owner types.NamespacedName) UninstallOption {
	return func(o *uninstallOptions) { o.owner = &owner }
}

// Uninstall deletes the objects of the inventory that Ferry manages (with
// ForOwner: that carry the owner's labels), webhook configurations first,
// then Deployments. The conversion webhook Ferry set on a CRD it keeps is
// removed. CRDs are kept unless policy is
// CRDDeletionDelete; then they are deleted first and everything else waits
// until they are gone, so that the operator can still finalize its custom
// resources. Namespaces are never deleted. Objects that do not belong to the
// owner are left alone and not counted.
func (a *Applier) Uninstall(ctx context.Context, inventory []v1alpha1.ObjectReference, policy v1alpha1.CRDDeletionPolicy, opts ...UninstallOption) (UninstallResult, error) {
	var o uninstallOptions
	for _, opt := range opts {
		opt(&o)
	}
	owns := func(m metav1.Object) bool { return ferryOwner(m) != "" }
	if o.owner != nil {
		owner := *o.owner
		owns = func(m metav1.Object) bool { return IsOwner(m, owner) }
	}
	refs := make([]v1alpha1.ObjectReference, 0, len(inventory))
	var crds []v1alpha1.ObjectReference
	for _, ref := range inventory {
		switch {
		case ref.Group == "" && ref.Kind == "Namespace":
		case isCRD(ref):
			if policy == v1alpha1.CRDDeletionDelete {
				crds = append(crds, ref)
			}
		default:
			refs = append(refs, ref)
		}
	}
	// Reverse apply order: Deployments, other objects, RBAC, ServiceAccounts.
	sort.SliceStable(refs, func(i, j int) bool { return rankOfRef(refs[i]) > rankOfRef(refs[j]) })

	var res UninstallResult
	if a.Authorize != nil {
		if err := a.Authorize(ctx, nil, append(slices.Clone(crds), refs...)); err != nil {
			return UninstallResult{Remaining: len(crds) + len(refs)}, err
		}
	}
	var errs []error
	step := func(list []v1alpha1.ObjectReference) {
		for _, ref := range list {
			if _, err := a.deleteOwned(ctx, owns, ref); err != nil {
				errs = append(errs, fmt.Errorf("deleting %s: %w", describe(ref), err))
			}
		}
	}
	count := func(list []v1alpha1.ObjectReference) int {
		n := 0
		for _, ref := range list {
			m, err := a.getMeta(ctx, ref)
			switch {
			case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
			case err != nil:
				errs = append(errs, fmt.Errorf("reading %s: %w", describe(ref), err))
				n++
			case owns(m):
				n++
			}
		}
		return n
	}
	if policy != v1alpha1.CRDDeletionDelete {
		// Kept CRDs must not call a conversion webhook that is going away.
		for _, ref := range inventory {
			if isCRD(ref) {
				if err := a.releaseConversion(ctx, ref.Name, owns); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	step(crds)
	if left := count(crds); left > 0 {
		res.Remaining = left + count(refs)
		return res, errors.Join(errs...)
	}
	step(refs)
	res.Remaining = count(refs)
	return res, errors.Join(errs...)
}

func rankOfRef(ref v1alpha1.ObjectReference) kinds.Rank {
	return kinds.RankOf(gvkOf(ref).GroupKind())
}
