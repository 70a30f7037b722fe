package subscription

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blang/semver/v4"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogsource"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/resolver"
	"github.com/ferrydev/ferry/internal/revision"
)

// facts is everything one reconcile knows about a Subscription. observe is
// the only phase that reads the cluster and the catalogs to make them;
// decide reads nothing else.
type facts struct {
	sub *v1alpha1.Subscription
	now time.Time
	// cannotAct is why the installer may not act for the Subscription now
	// (applierFor failed); nil when it may.
	cannotAct error

	// revisions are the Subscription's trusted revisions, oldest first.
	revisions []v1alpha1.Revision
	// current is the revision now applied: status.currentRevision, or a
	// newer one the installer recorded before it stopped.
	current *v1alpha1.Revision
	// health of what is applied; nil when nothing is.
	health *install.Health
	// applyFailed is why the current revision could not be applied in
	// this reconcile, past its health timeout: the one fact an action
	// learns (see Reconciler.run). nil until then.
	applyFailed error

	// pin is spec.rollbackTo's revision; nil without rollbackTo.
	pin *pinFacts

	catalog catalogFacts
	// resolveErr is a request the resolver refused (the spec is at fault).
	resolveErr error
	// resolution is the resolver's answer; nil when it was not asked.
	resolution *resolver.Decision
	// deprecation is what the catalog deprecates of the package, channel
	// and installed bundle; nil when no catalog has the package.
	deprecation *deprecationFacts
	// latest is the newest version of the channel within the range.
	latest string
	// dependencies the resolution needs, with the Subscription providing each.
	dependencies []dependencyFact
	// released are the Subscriptions Ferry created for this one that the
	// resolution no longer needs.
	released []*v1alpha1.Subscription
	// candidate is what the spec and the catalogs ask to run now; nil when
	// there is no resolution or the Subscription is paused.
	candidate *candidate
	// kube is the cluster's Kubernetes version; nil when not checked.
	kube *semver.Version
	// fetched are the manifests of the resolution's target, when they were
	// fetched to learn its minimum Kubernetes version.
	fetched *fetched
}

// pinFacts is the revision spec.rollbackTo names.
type pinFacts struct {
	revision int64
	// rev is nil when it does not exist.
	rev *v1alpha1.Revision
	// objects are its objects; err is why they cannot be used.
	objects []*unstructured.Unstructured
	err     error
}

// catalogFacts says whether there is catalog content to resolve with.
type catalogFacts struct {
	// usable: some catalog content is there (maybe not fresh).
	usable bool
	// reachable: the Subscription's catalog (or every one) answers.
	reachable bool
	// message says which catalogs and in which state.
	message string
	// digest is the content digest of the Subscription's catalog.
	digest string
}

// dependencyFact is one dependency and the Subscription that provides it.
type dependencyFact struct {
	dep resolver.Dependency
	// child is nil when no Subscription in the namespace provides it yet;
	// create is then the one to create.
	child  *v1alpha1.Subscription
	create *v1alpha1.Subscription
	// update is child as the requirement wants it now, when Ferry created
	// child for this parent and it differs; nil otherwise.
	update *v1alpha1.Subscription
	// versionRange is the range of the package the target requires.
	versionRange string
}

// candidate is the version the spec and the catalogs ask for, rendered.
type candidate struct {
	content
	// edge is how it is reached from the installed version.
	edge resolver.Edge
	// renderErr is why its objects cannot be had.
	renderErr error
	// needsApproval: a Manual Subscription's upgrade not approved yet;
	// changes lists what it would change, refusal why the Subscription's
	// ServiceAccount could not apply it.
	needsApproval bool
	changes       []string
	refusal       string
	// failed is a revision with this content that failed its health gate;
	// retry says the annotation grants it another try.
	failed *v1alpha1.Revision
	retry  bool
	// crd is the CRD safety verdict; nil when not checked.
	crd *CRDCheck
}

// content is a set of objects to apply and the revision it makes.
type content struct {
	target revision.Target
	// objects to apply; nil when they are loaded from the revision from.
	objects []*unstructured.Unstructured
	from    *v1alpha1.Revision
	digest  string
	// reason is the revision reason (Install, Upgrade, ...).
	reason string
	// rollbackOf is the revision whose objects are restored.
	rollbackOf int64
}

// observe gathers the facts of one reconcile. An error is a failure to read
// (retried); everything that can be explained is a fact.
func (r *Reconciler) observe(ctx context.Context, sub *v1alpha1.Subscription, ap *install.Applier) (*facts, error) {
	f := &facts{sub: sub, now: time.Now()}
	if !sub.DeletionTimestamp.IsZero() {
		return f, nil
	}
	revs, err := r.revisions().List(ctx, sub)
	if err != nil {
		return nil, fmt.Errorf("listing revisions: %w", err)
	}
	f.revisions = revs
	f.current = currentRevision(revs, sub.Status.CurrentRevision)
	if f.current != nil && ap != nil {
		h, err := ap.Health(ctx, sub.Status.Inventory)
		if err != nil {
			return nil, fmt.Errorf("health: %w", err)
		}
		f.health = &h
	}
	if sub.Spec.RollbackTo != nil {
		// A pinned revision needs no catalog: it has its objects.
		if f.pin, err = r.observePin(ctx, sub); err != nil {
			return nil, err
		}
		return f, nil
	}
	snaps := r.observeCatalogs(f)
	if !f.catalog.usable {
		return f, nil
	}
	if err := r.observeResolution(ctx, f, snaps); err != nil {
		return nil, err
	}
	f.deprecation = observeDeprecation(sub, f.resolution, snaps)
	if f.resolution == nil || f.resolution.Status == resolver.StatusUnsatisfiable {
		return f, nil
	}
	if err := r.observeDependencies(ctx, f, snaps); err != nil {
		return nil, err
	}
	if sub.Spec.Paused || (waitingDependencies(f) != "" && !awaitsApproval(f)) {
		return f, nil
	}
	return f, r.observeCandidate(ctx, f, ap)
}

// currentRevision is the revision numbered n, or a newer one that was
// recorded but not written to the status before the installer stopped:
// revisions are the source of truth.
func currentRevision(all []v1alpha1.Revision, n int64) *v1alpha1.Revision {
	var cur *v1alpha1.Revision
	for i := range all {
		if all[i].Spec.Revision == n {
			cur = &all[i]
		}
	}
	for i := len(all) - 1; i >= 0; i-- {
		rev := &all[i]
		if rev.Spec.Revision <= n || rev.Status.Outcome == v1alpha1.OutcomeSuperseded {
			break
		}
		if rev.Status.Outcome == v1alpha1.OutcomeRolledBack || rev.Status.Outcome == v1alpha1.OutcomeFailed {
			continue
		}
		return rev
	}
	return cur
}

// lastHealthy is the newest healthy revision numbered below n (any when n is 0).
func lastHealthy(all []v1alpha1.Revision, below int64) *v1alpha1.Revision {
	var out *v1alpha1.Revision
	for i := range all {
		if (below == 0 || all[i].Spec.Revision < below) && all[i].Status.Outcome == v1alpha1.OutcomeHealthy {
			out = &all[i]
		}
	}
	return out
}

// observePin reads the revision spec.rollbackTo names and its objects.
func (r *Reconciler) observePin(ctx context.Context, sub *v1alpha1.Subscription) (*pinFacts, error) {
	p := &pinFacts{revision: sub.Spec.RollbackTo.Revision}
	rev, err := r.revisions().Get(ctx, sub, p.revision)
	if err != nil {
		return nil, fmt.Errorf("reading revision %d: %w", p.revision, err)
	}
	if rev == nil {
		return p, nil
	}
	p.rev = rev
	p.objects, err = r.revisions().Load(ctx, sub, rev)
	var untrusted *revision.UntrustedError
	if errors.As(err, &untrusted) {
		p.err = err
		return p, nil
	}
	return p, err
}

// observeCatalogs collects the catalog snapshots the Subscription may use.
func (r *Reconciler) observeCatalogs(f *facts) []resolver.Snapshot {
	sub := f.sub
	var snaps []*catalogsource.Snapshot
	if sub.Spec.Catalog != "" {
		s, ok := r.Catalogs.Get(sub.Spec.Catalog)
		if ok && s.Catalog != nil {
			snaps = append(snaps, s)
		}
		// Other catalogs may serve dependencies.
		for _, o := range r.Catalogs.List() {
			if o.Name != sub.Spec.Catalog && o.Catalog != nil {
				snaps = append(snaps, o)
			}
		}
		switch {
		case !ok || s.Catalog == nil:
			f.catalog.message = fmt.Sprintf("CatalogSource %q has not delivered a catalog yet", sub.Spec.Catalog)
			if state, found := r.Catalogs.State(sub.Spec.Catalog); found && state.Err != nil {
				f.catalog.message = fmt.Sprintf("CatalogSource %q is unreachable: %v", sub.Spec.Catalog, state.Err)
			}
			return nil
		case !s.Connected:
			f.catalog.message = fmt.Sprintf("CatalogSource %q is unreachable; using the content last received (%s)", sub.Spec.Catalog, s.Digest)
			if s.Err != nil {
				f.catalog.message = fmt.Sprintf("CatalogSource %q is unreachable (%v); using the content last received (%s)", sub.Spec.Catalog, s.Err, s.Digest)
			}
		default:
			f.catalog.reachable = true
			f.catalog.message = fmt.Sprintf("CatalogSource %q serves %s", s.Name, s.Digest)
		}
		f.catalog.usable = true
		f.catalog.digest = s.Digest
	} else {
		for _, o := range r.Catalogs.List() {
			if o.Catalog != nil {
				snaps = append(snaps, o)
			}
		}
		if len(snaps) == 0 {
			f.catalog.message = "no CatalogSource has delivered a catalog yet"
			return nil
		}
		f.catalog.usable, f.catalog.reachable = true, true
		f.catalog.message = fmt.Sprintf("%d catalogs available", len(snaps))
	}
	out := make([]resolver.Snapshot, 0, len(snaps))
	for _, s := range snaps {
		out = append(out, resolver.Snapshot{Name: s.Name, Priority: int(s.Priority), Catalog: s.Catalog})
	}
	return out
}

// observeResolution asks the resolver what the Subscription should run.
func (r *Reconciler) observeResolution(ctx context.Context, f *facts, snaps []resolver.Snapshot) error {
	sub := f.sub
	installed, err := r.installedOperators(ctx)
	if err != nil {
		return err
	}
	req := resolver.Request{
		Catalogs:  snaps,
		Installed: installed,
		Subscriptions: []resolver.Subscription{{
			Namespace: sub.Namespace, Name: sub.Name, Catalog: sub.Spec.Catalog, Package: sub.Spec.Package,
			Channel: sub.Spec.Channel, Range: sub.Spec.VersionRange, StartingVersion: sub.Spec.StartingVersion,
			Approval:        resolver.Approval(sub.Spec.EffectiveApproval()),
			ApprovedVersion: sub.Spec.ApprovedVersion, AllowDowngrade: sub.Spec.AllowDowngrade,
		}},
	}
	if f.kube, err = r.kubeVersion(ctx); err != nil {
		return err
	}
	if f.kube != nil {
		req.KubeVersion, req.MinKubeVersion = f.kube, r.minKube.lookup
	}
	// A target whose minimum Kubernetes version is not known yet is
	// fetched to learn it; when it does not fit, the resolver is asked
	// again and passes it over.
	for probes := 0; ; probes++ {
		start := time.Now()
		res, err := resolver.Resolve(ctx, req)
		since(resolutionSeconds, start)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			// A malformed request: the spec is at fault.
			f.resolveErr = err
			return nil
		}
		f.resolution = res.Decision(sub.Namespace + "/" + sub.Name)
		if f.kube == nil || probes == MaxKubeVersionProbes || !r.probeTarget(ctx, f, snaps, *f.kube) {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if l := f.resolution.Latest; l != nil {
		f.latest = l.String()
	}
	return nil
}

// installedOperators lists what Subscriptions have installed, cluster-wide.
// Every resolution asks, so the cache's Subscriptions are read in place,
// not copied: copying all N Subscriptions in each of their reconciles is
// work that grows with N² (docs/scale.md). Nothing here writes to them.
func (r *Reconciler) installedOperators(ctx context.Context) ([]resolver.Installed, error) {
	var list v1alpha1.SubscriptionList
	if err := r.Client.List(ctx, &list, ctrl.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	var out []resolver.Installed
	seen := map[string]bool{}
	for _, s := range list.Items {
		if s.Status.InstalledVersion == "" {
			continue
		}
		v, err := semver.Parse(s.Status.InstalledVersion)
		if err != nil {
			continue
		}
		key := s.Namespace + "/" + s.Spec.Package
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, resolver.Installed{
			Namespace: s.Namespace, Package: s.Spec.Package, Version: v,
			Bundle: s.Status.InstalledBundle, Catalog: s.Status.Catalog,
		})
	}
	return out, nil
}

// observeDependencies finds the Subscription in the namespace providing each
// dependency, or the one to create.
func (r *Reconciler) observeDependencies(ctx context.Context, f *facts, snaps []resolver.Snapshot) error {
	var list v1alpha1.SubscriptionList
	if err := r.Client.List(ctx, &list, ctrl.InNamespace(f.sub.Namespace)); err != nil {
		return err
	}
	byPackage := map[string]*v1alpha1.Subscription{}
	for i := range list.Items {
		// A child Ferry created for this Subscription is preferred to
		// another Subscription of the same package.
		if s := &list.Items[i]; byPackage[s.Spec.Package] == nil || s.Labels[LabelParent] == f.sub.Name {
			byPackage[s.Spec.Package] = s
		}
	}
	needed := make([]string, 0, len(f.resolution.Dependencies))
	for _, dep := range f.resolution.Dependencies {
		needed = append(needed, dep.Package)
		want := childFor(f.sub, snaps, f.resolution.Target, dep)
		df := dependencyFact{dep: dep, child: byPackage[dep.Package], versionRange: want.Spec.VersionRange}
		if df.child == nil {
			df.create = want
		} else {
			df.update = childUpdate(f.sub, df.child, want, bundleInChannel(snaps, dep, df.child.Spec.Channel))
		}
		f.dependencies = append(f.dependencies, df)
	}
	f.dependencies = append(f.dependencies, installedDependencies(f.sub, snaps, f.resolution.Target, byPackage, needed)...)
	f.released = releasedChildren(f.sub, list.Items, needed, requiredBy(snaps, f.resolution.Target))
	return nil
}

// observeCandidate renders what the spec and the catalogs ask for: the
// resolver's target (the approved version of a Manual Subscription when it
// is reachable; with allowDowngrade, a lower version within the range), or,
// for allowDowngrade when no catalog has one, the newest healthy revision
// within the range below the installed version.
func (r *Reconciler) observeCandidate(ctx context.Context, f *facts, ap *install.Applier) error {
	sub := f.sub
	d := f.resolution
	c := &candidate{edge: d.Edge}
	f.candidate = c
	if down := downgradeFromHistory(f); down != nil {
		c.content = *down
	} else {
		t := *d.Target
		// Approval is for upgrades: a first install goes ahead.
		c.needsApproval = d.NeedsApproval && sub.Status.InstalledBundle != "" && sub.Status.InstalledBundle != t.Bundle
		c.target = revision.Target{Catalog: t.Catalog, Bundle: t.Bundle, Version: t.Version.String()}
		switch {
		case d.Status == resolver.StatusDowngrade:
			c.reason = reasonDowngrade
		case sub.Status.InstalledBundle == "":
			c.reason = reasonInstall
		case sub.Status.InstalledBundle == t.Bundle:
			c.reason = reasonReconfigure
		default:
			c.reason = reasonUpgrade
		}
		rendered, err := r.renderTarget(ctx, f, t.Catalog, t.Bundle, t.Version.String())
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			c.renderErr = err
			return nil
		}
		c.objects = rendered.Objects
		if c.needsApproval {
			refusal, err := upgradeRefusal(ctx, ap, rendered, sub.Status.Inventory)
			if err != nil {
				return err
			}
			c.refusal = refusal
			if c.changes, err = r.pendingChanges(ctx, f, ap, rendered, refusal != ""); err != nil {
				return err
			}
			return nil
		}
	}
	if c.objects == nil {
		objs, err := r.revisions().Load(ctx, sub, c.from)
		if err != nil {
			return err
		}
		c.objects = objs
	}
	digest, err := revision.Digest(c.objects)
	if err != nil {
		c.renderErr = err
		return nil //nolint:nilerr // explained in the status, not retried
	}
	c.digest = digest
	c.failed = failedWith(f.revisions, c.digest)
	c.retry = c.failed != nil && sub.Annotations[AnnotationRetryUpgrade] == c.failed.Spec.Version
	if c.failed == nil || c.retry {
		check, err := r.checkCRDs(ctx, ap, sub, &c.content)
		if err != nil {
			return err
		}
		c.crd = check
	}
	return nil
}

// failedWith returns a revision with this content that failed its health
// gate, unless a later one with it was healthy.
func failedWith(all []v1alpha1.Revision, digest string) *v1alpha1.Revision {
	for i := len(all) - 1; i >= 0; i-- {
		o := all[i].Status.Outcome
		if all[i].Spec.ContentDigest == digest && (o == v1alpha1.OutcomeRolledBack || o == v1alpha1.OutcomeFailed) {
			return &all[i]
		}
		if all[i].Spec.ContentDigest == digest && o == v1alpha1.OutcomeHealthy {
			return nil
		}
	}
	return nil
}

// downgradeFromHistory is, for allowDowngrade, the newest healthy revision
// within the range below an installed version outside it, when the
// resolver found no such version in the catalogs (they no longer have it).
func downgradeFromHistory(f *facts) *content {
	sub, d := f.sub, f.resolution
	if !sub.Spec.AllowDowngrade || !d.OutsideRange || d.Status == resolver.StatusDowngrade {
		return nil
	}
	inRange, rerr := catalog.ParseRange(sub.Spec.VersionRange)
	installed, verr := semver.Parse(sub.Status.InstalledVersion)
	if rerr != nil || verr != nil {
		return nil
	}
	var from *v1alpha1.Revision
	var fromVersion semver.Version
	for i := range f.revisions {
		v, err := semver.Parse(f.revisions[i].Spec.Version)
		if err == nil && inRange(v) && v.LT(installed) && f.revisions[i].Status.Outcome == v1alpha1.OutcomeHealthy && (from == nil || v.GTE(fromVersion)) {
			from, fromVersion = &f.revisions[i], v
		}
	}
	if from == nil {
		return nil
	}
	return &content{target: revision.Target{Catalog: from.Spec.Catalog, Bundle: from.Spec.Bundle, Version: from.Spec.Version}, from: from, reason: reasonDowngrade, rollbackOf: from.Spec.Revision}
}
