package subscription

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/livediff"
	"github.com/ferrydev/ferry/internal/revision"
)

// Bounds of status.availableUpgrade.changes.
const (
	// maxChangeLines bounds its lines.
	maxChangeLines = livediff.DefaultMaxLines
	// maxChangeBytes bounds its bytes.
	maxChangeBytes = livediff.DefaultMaxBytes
	// maxPendingDiffs bounds the pending upgrades whose diff is kept.
	maxPendingDiffs = 4096
)

// pendingDiffs keeps the live diff of each Subscription's pending upgrade,
// so that it is computed once per pending upgrade, not on every reconcile.
type pendingDiffs struct {
	mu sync.Mutex
	m  map[types.NamespacedName]pendingDiff
}

// pendingDiff is the diff of one pending upgrade.
type pendingDiff struct {
	// key is the installed revision's content digest and the target's.
	key     string
	changes []string
}

func (p *pendingDiffs) get(sub types.NamespacedName, key string) ([]string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.m[sub]
	if !ok || d.key != key {
		return nil, false
	}
	return d.changes, true
}

func (p *pendingDiffs) put(sub types.NamespacedName, key string, changes []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m) >= maxPendingDiffs {
		p.m = map[types.NamespacedName]pendingDiff{}
	}
	p.m[sub] = pendingDiff{key: key, changes: changes}
}

// errDryRunRefused: the Subscription's ServiceAccount may not make the dry
// run of every object.
var errDryRunRefused = errors.New("the dry run was refused")

// errCannotAct: the installer cannot act as the Subscription's
// ServiceAccount now.
var errCannotAct = errors.New("the installer cannot act as the Subscription's ServiceAccount")

// errUpgradeRefused: the Subscription's ServiceAccount lacks rights the
// upgrade needs, so the dry run is not asked for.
var errUpgradeRefused = errors.New("the Subscription's ServiceAccount lacks rights the upgrade needs (status.availableUpgrade.refusal)")

// liveChanges is what approving the pending upgrade to rendered would
// change in the cluster: a server-side apply dry run of its objects made
// as the Subscription's ServiceAccount (ap's Writer), compared with the
// live objects, one line per changed field of each object. installed is
// the installed revision's content digest. When the dry run cannot be made
// or is refused, fallback's comparison of the rendered bundles is given,
// after a line saying so.
func (r *Reconciler) liveChanges(ctx context.Context, x liveDiffInput, fallback func() []string) ([]string, error) {
	target, err := revision.Digest(x.rendered.Objects)
	if err != nil {
		return fallback(), nil //nolint:nilerr // the rendered comparison still says something
	}
	key := fmt.Sprintf("%s|%s|%t", x.installed, target, x.refused)
	if changes, ok := r.pending.get(x.owner, key); ok {
		return changes, nil
	}
	changes, err := r.dryRunChanges(ctx, x)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		log.FromContext(ctx).Info("live diff of the pending upgrade not available, comparing the bundles", "subscription", x.owner.String(), "reason", refusalReason(err))
		changes = append([]string{"compared with the installed bundle, not the live objects: " + refusalReason(err)}, fallback()...)
		changes = livediff.Bound(changes, maxChangeLines, maxChangeBytes)
	}
	var re *livediff.ReadError
	if !errors.As(err, &re) && !errors.Is(err, errCannotAct) {
		// A failed read, or an installer that cannot act for the
		// Subscription yet, is tried again on the next reconcile.
		r.pending.put(x.owner, key, changes)
	}
	return changes, nil
}

// liveDiffInput is what liveChanges compares.
type liveDiffInput struct {
	owner     types.NamespacedName
	pkg       string
	ap        *install.Applier
	rendered  *install.Rendered
	inventory []v1alpha1.ObjectReference
	installed string
	// refused: the ServiceAccount lacks rights the upgrade needs.
	refused bool
}

func (r *Reconciler) dryRunChanges(ctx context.Context, x liveDiffInput) ([]string, error) {
	switch {
	case x.ap == nil || x.ap.Writer == nil:
		return nil, errCannotAct
	case x.refused:
		return nil, errUpgradeRefused
	}
	rd := x.ap.Reader
	if rd == nil {
		rd = x.ap.Client
	}
	res, err := livediff.Compare(ctx, rd, x.ap.Writer, livediff.Input{Objects: x.rendered.Objects, Inventory: x.inventory, Owner: x.owner, Package: x.pkg})
	if err != nil {
		return nil, err
	}
	for _, o := range res.Objects {
		if o.Err != nil && (apierrors.IsForbidden(o.Err) || apierrors.IsUnauthorized(o.Err)) {
			return nil, fmt.Errorf("%w for %s", errDryRunRefused, o.Object)
		}
	}
	return livediff.Summary(res, maxChangeLines, maxChangeBytes), nil
}

// refusalReason says in one line why there is no live diff, without the
// API server's wording.
func refusalReason(err error) string {
	if errors.Is(err, errDryRunRefused) {
		return err.Error() + " as the Subscription's ServiceAccount"
	}
	var re *livediff.ReadError
	if errors.As(err, &re) {
		return "the installer could not read " + re.Object
	}
	return err.Error()
}

// pendingChanges is status.availableUpgrade.changes for the pending
// upgrade to rendered: the live diff, else the comparison of the installed
// bundle with rendered.
//
// refused says that the Subscription's ServiceAccount lacks rights the
// upgrade needs (status.availableUpgrade.refusal): the dry run would be
// refused too, so it is not asked for.
func (r *Reconciler) pendingChanges(ctx context.Context, f *facts, ap *install.Applier, rendered *install.Rendered, refused bool) ([]string, error) {
	sub := f.sub
	bundles := func() []string {
		changes := []string{}
		if old, err := r.renderBundle(ctx, sub, sub.Status.Catalog, sub.Status.InstalledBundle, sub.Status.InstalledVersion); err == nil {
			changes = install.Changes(old, rendered)
		}
		return changes
	}
	installed := ""
	if f.current != nil {
		installed = f.current.Spec.ContentDigest
	}
	return r.liveChanges(ctx, liveDiffInput{
		owner: types.NamespacedName{Namespace: sub.Namespace, Name: sub.Name}, pkg: sub.Spec.Package,
		ap: ap, rendered: rendered, inventory: sub.Status.Inventory, installed: installed, refused: refused,
	}, bundles)
}
