package subscription

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/blang/semver/v4"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogsource"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/resolver"
)

// Permissions of the Subscription controller. config/rbac/role.yaml is
// generated from the +kubebuilder:rbac markers of the installer's packages
// (make generate); docs/deploy.md explains each rule.
//
// Subscriptions are watched by the manager's cache (get, list, watch) and
// read from the API server at the start of each reconcile (get); the
// finalizer is added and removed with Update; a child Subscription is
// created for each missing dependency; the retry annotation is removed with
// a merge Patch; status is written with Status().Patch. Events on
// Subscriptions go through the manager's events.k8s.io recorder, which
// creates an event and patches it when it repeats.
//
// +kubebuilder:rbac:groups=operators.ferry.dev,resources=subscriptions,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=operators.ferry.dev,resources=subscriptions/status,verbs=patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Finalizer keeps a Subscription until what it installed is removed.
const Finalizer = "operators.ferry.dev/uninstall"

// LabelParent is set on child Subscriptions created for dependencies; its
// value is the parent Subscription's name.
const LabelParent = "operators.ferry.dev/parent"

// AnnotationRequiredBy on a child Subscription says which requirement made it.
const AnnotationRequiredBy = "operators.ferry.dev/required-by"

// Catalogs is what the controller needs of the catalog store.
type Catalogs interface {
	Get(name string) (*catalogsource.Snapshot, bool)
	// State reports a CatalogSource's connection even before any content.
	State(name string) (*catalogsource.Snapshot, bool)
	List() []*catalogsource.Snapshot
	Manifests(ctx context.Context, catalogName, pkg, bundle string) ([]catalog.Manifest, error)
}

// Reconciler reconciles Subscriptions.
type Reconciler struct {
	Client ctrl.Client
	// APIReader reads what is not cached (revisions and their blobs); the
	// Client when nil.
	APIReader ctrl.Reader
	Catalogs  Catalogs
	Applier   *install.Applier
	Recorder  events.EventRecorder
	// CRDs checks CRD changes before they are applied; no checks when nil.
	CRDs CRDChecker
	// HealthRequeue is how often a Subscription waiting for its operator to
	// become healthy is looked at again.
	HealthRequeue time.Duration
}

// state is what one reconcile works on.
type state struct {
	sub      *v1alpha1.Subscription
	before   v1alpha1.SubscriptionStatus
	log      logr.Logger
	catalogs []resolver.Snapshot
	decision *resolver.Decision
	target   *resolver.Target
	// want is what this reconcile applies, and current the revision now applied.
	want    *desired
	current *v1alpha1.Revision
	requeue time.Duration
	// done stops the remaining steps (status is still written).
	done bool
	// keep: the target cannot be worked out now (catalog unavailable,
	// unsatisfiable); the current revision is applied and gated as it is.
	keep bool
	// orig is the Subscription as read, the base of status patches.
	orig *v1alpha1.Subscription
}

type step struct {
	name string
	run  func(context.Context, *state) error
}

// Reconcile runs the steps for one Subscription.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	// The Subscription is read from the API server, not the cache: the
	// status written by the previous reconcile (current revision, installed
	// version) must be seen, or a revision could be recorded twice.
	sub := &v1alpha1.Subscription{}
	if err := r.reader().Get(ctx, req.NamespacedName, sub); err != nil {
		return reconcile.Result{}, ctrl.IgnoreNotFound(err)
	}
	st := &state{sub: sub, before: *sub.Status.DeepCopy(), log: log.FromContext(ctx), orig: sub.DeepCopy()}
	if !sub.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, st)
	}
	if controllerutil.AddFinalizer(sub, Finalizer) {
		if err := r.Client.Update(ctx, sub); err != nil {
			return reconcile.Result{}, err
		}
	}
	steps := []step{
		{"revision", r.loadCurrent},
		{"catalogs", r.gatherCatalogs},
		{"resolve", r.resolve},
		{"dependencies", r.ensureDependencies},
		{"approve", r.approve},
		{"render", r.render},
		{"crds", r.checkCRDs},
		{"record", r.record},
		{"apply", r.apply},
		{"health", r.checkHealth},
		{"history", r.pruneHistory},
	}
	if sub.Spec.RollbackTo != nil {
		// A pinned revision needs no catalog: it has its objects.
		steps = []step{
			{"revision", r.loadCurrent},
			{"pin", r.pin},
			{"crds", r.checkCRDs},
			{"record", r.record},
			{"apply", r.apply},
			{"health", r.checkHealth},
			{"history", r.pruneHistory},
		}
	}
	var stepErr error
	for _, s := range steps {
		if st.done {
			break
		}
		if err := s.run(ctx, st); err != nil {
			stepErr = fmt.Errorf("%s: %w", s.name, err)
			break
		}
	}
	var untrusted *untrustedRevisionError
	if errors.As(stepErr, &untrusted) {
		// A stored revision this reconcile needed was refused: say so.
		msg := stepErr.Error()
		setCondition(sub, v1alpha1.TypeProgressing, metav1.ConditionFalse, v1alpha1.ReasonRevisionUntrusted, msg)
		sub.Status.Explanation = msg
		r.Recorder.Eventf(sub, nil, corev1.EventTypeWarning, v1alpha1.ReasonRevisionUntrusted, "LoadRevision", "%s", msg)
	}
	if err := r.writeStatus(ctx, st); err != nil {
		return reconcile.Result{}, errors.Join(stepErr, err)
	}
	if stepErr != nil {
		return reconcile.Result{}, stepErr
	}
	return reconcile.Result{RequeueAfter: st.requeue}, nil
}

// setCondition is the one way conditions are set: it records the generation.
func setCondition(sub *v1alpha1.Subscription, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&sub.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: truncate(msg, 32768), ObservedGeneration: sub.Generation,
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// gatherCatalogs collects the catalog snapshots the Subscription may use.
func (r *Reconciler) gatherCatalogs(_ context.Context, st *state) error {
	sub := st.sub
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
		if !ok || s.Catalog == nil {
			msg := fmt.Sprintf("CatalogSource %q has not delivered a catalog yet", sub.Spec.Catalog)
			if state, found := r.Catalogs.State(sub.Spec.Catalog); found && state.Err != nil {
				msg = fmt.Sprintf("CatalogSource %q is unreachable: %v", sub.Spec.Catalog, state.Err)
			}
			r.catalogUnavailable(st, msg)
			return nil
		}
		if !s.Connected {
			msg := fmt.Sprintf("CatalogSource %q is unreachable; using the content last received (%s)", sub.Spec.Catalog, s.Digest)
			if s.Err != nil {
				msg = fmt.Sprintf("CatalogSource %q is unreachable (%v); using the content last received (%s)", sub.Spec.Catalog, s.Err, s.Digest)
			}
			setCondition(sub, v1alpha1.TypeCatalogReachable, metav1.ConditionFalse, v1alpha1.ReasonCatalogUnavailable, msg)
		} else {
			setCondition(sub, v1alpha1.TypeCatalogReachable, metav1.ConditionTrue, v1alpha1.ReasonConnected, fmt.Sprintf("CatalogSource %q serves %s", s.Name, s.Digest))
		}
		sub.Status.CatalogDigest = s.Digest
	} else {
		for _, o := range r.Catalogs.List() {
			if o.Catalog != nil {
				snaps = append(snaps, o)
			}
		}
		if len(snaps) == 0 {
			r.catalogUnavailable(st, "no CatalogSource has delivered a catalog yet")
			return nil
		}
		setCondition(sub, v1alpha1.TypeCatalogReachable, metav1.ConditionTrue, v1alpha1.ReasonConnected, fmt.Sprintf("%d catalogs available", len(snaps)))
	}
	for _, s := range snaps {
		st.catalogs = append(st.catalogs, resolver.Snapshot{Name: s.Name, Priority: int(s.Priority), Catalog: s.Catalog})
	}
	return nil
}

// catalogUnavailable leaves whatever is installed running and says why
// nothing else happens.
func (r *Reconciler) catalogUnavailable(st *state, msg string) {
	sub := st.sub
	setCondition(sub, v1alpha1.TypeCatalogReachable, metav1.ConditionFalse, v1alpha1.ReasonCatalogUnavailable, msg)
	setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionFalse, v1alpha1.ReasonCatalogUnavailable, msg)
	if sub.Status.InstalledVersion == "" {
		sub.Status.State = v1alpha1.StateResolving
	}
	st.requeue = time.Minute
	r.keepGoing(st)
}

// keepGoing stops resolution; a revision already applied is still applied
// and gated, so an upgrade in flight ends healthy or rolled back.
func (r *Reconciler) keepGoing(st *state) {
	if st.current == nil {
		st.done = true
		return
	}
	st.keep = true
}

// resolve asks the resolver what this Subscription should run.
func (r *Reconciler) resolve(ctx context.Context, st *state) error {
	if st.keep {
		return nil
	}
	sub := st.sub
	installed, err := r.installedOperators(ctx)
	if err != nil {
		return err
	}
	req := resolver.Request{
		Catalogs:  st.catalogs,
		Installed: installed,
		Subscriptions: []resolver.Subscription{{
			Namespace: sub.Namespace, Name: sub.Name, Catalog: sub.Spec.Catalog, Package: sub.Spec.Package,
			Channel: sub.Spec.Channel, Range: sub.Spec.VersionRange, StartingVersion: sub.Spec.StartingVersion,
			Approval:        resolver.Approval(orDefault(string(sub.Spec.Approval), string(v1alpha1.ApprovalAutomatic))),
			ApprovedVersion: sub.Spec.ApprovedVersion,
		}},
	}
	res, err := resolver.Resolve(ctx, req)
	if err != nil {
		// A malformed request: the spec is at fault.
		setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionFalse, v1alpha1.ReasonUnsatisfiable, err.Error())
		sub.Status.Explanation = err.Error()
		r.failed(st)
		return nil
	}
	d := res.Decision(sub.Namespace + "/" + sub.Name)
	st.decision = d
	r.observeLatest(st)
	if d.Status == resolver.StatusUnsatisfiable {
		msg := d.Explanation.Message
		setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionFalse, v1alpha1.ReasonUnsatisfiable, msg)
		sub.Status.Explanation = msg
		r.failed(st)
		return nil
	}
	sub.Status.Explanation = ""
	st.target = d.Target
	msg := fmt.Sprintf("%s %s from catalog %q, channel %q", d.Target.Package, d.Target.Version, d.Target.Catalog, d.Target.Channel)
	if len(d.Warnings) > 0 {
		msg += "; " + strings.Join(d.Warnings, "; ")
	}
	setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionTrue, v1alpha1.ReasonResolved, msg)
	return nil
}

// failed marks a Subscription that cannot proceed; an installed operator keeps running.
func (r *Reconciler) failed(st *state) {
	if st.sub.Status.InstalledVersion == "" {
		st.sub.Status.State = v1alpha1.StateFailed
		setCondition(st.sub, v1alpha1.TypeInstalled, metav1.ConditionFalse, v1alpha1.ReasonNotInstalled, "nothing is installed: the Subscription cannot be resolved")
	}
	setCondition(st.sub, v1alpha1.TypeProgressing, metav1.ConditionFalse, v1alpha1.ReasonUnsatisfiable, "waiting for the catalog or the spec to change")
	// Another Subscription's change may make it possible: look again later.
	st.requeue = time.Minute
	r.keepGoing(st)
}

// observeLatest records the newest version of the channel within the range.
func (r *Reconciler) observeLatest(st *state) {
	sub := st.sub
	rng := func(semver.Version) bool { return true }
	if sub.Spec.VersionRange != "" {
		if parsed, err := catalog.ParseRange(sub.Spec.VersionRange); err == nil {
			rng = parsed
		}
	}
	latest, _ := highestInChannel(st, func(v semver.Version) bool { return rng(v) })
	sub.Status.LatestVersion = ""
	if latest != nil {
		sub.Status.LatestVersion = latest.Version.String()
	}
}

// highestInChannel returns the highest bundle of the Subscription's channel
// (in its catalog, or in any) that ok accepts, and the catalog it is in.
func highestInChannel(st *state, ok func(semver.Version) bool) (*catalog.Bundle, string) {
	sub := st.sub
	var best *catalog.Bundle
	var bestCat string
	for _, s := range st.catalogs {
		if sub.Spec.Catalog != "" && s.Name != sub.Spec.Catalog {
			continue
		}
		p := s.Catalog.Package(sub.Spec.Package)
		if p == nil {
			continue
		}
		ch := p.Channel(orDefault(sub.Spec.Channel, p.DefaultChannel))
		if ch == nil {
			continue
		}
		for _, e := range ch.Entries {
			if ok(e.Bundle.Version) && (best == nil || e.Bundle.Version.GT(best.Version)) {
				best, bestCat = e.Bundle, s.Name
			}
		}
	}
	return best, bestCat
}

// installedOperators lists what Subscriptions have installed, cluster-wide.
func (r *Reconciler) installedOperators(ctx context.Context) ([]resolver.Installed, error) {
	var list v1alpha1.SubscriptionList
	if err := r.Client.List(ctx, &list); err != nil {
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

// ensureDependencies creates a child Subscription for every dependency that
// no Subscription in the namespace provides yet, and waits until all are installed.
func (r *Reconciler) ensureDependencies(ctx context.Context, st *state) error {
	if st.keep {
		return nil
	}
	sub := st.sub
	if len(st.decision.Dependencies) == 0 {
		return nil
	}
	var list v1alpha1.SubscriptionList
	if err := r.Client.List(ctx, &list, ctrl.InNamespace(sub.Namespace)); err != nil {
		return err
	}
	byPackage := map[string]*v1alpha1.Subscription{}
	for i := range list.Items {
		byPackage[list.Items[i].Spec.Package] = &list.Items[i]
	}
	var waiting []string
	for _, dep := range st.decision.Dependencies {
		child := byPackage[dep.Package]
		if child == nil {
			child = r.childFor(st, dep)
			err := r.Client.Create(ctx, child)
			if apierrors.IsAlreadyExists(err) {
				// The name is taken by a Subscription of another package.
				child.Name = fmt.Sprintf("%s-%s", sub.Name, dep.Package)
				err = r.Client.Create(ctx, child)
			}
			if err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating Subscription for dependency %s: %w", dep.Package, err)
			}
			r.Recorder.Eventf(sub, child, corev1.EventTypeNormal, "DependencySubscribed", "Subscribe", "created Subscription %s for %s (%s)", child.Name, dep.Package, dep.RequiredBy)
		}
		if !meta.IsStatusConditionTrue(child.Status.Conditions, v1alpha1.TypeInstalled) {
			waiting = append(waiting, fmt.Sprintf("%s (Subscription %s, %s)", dep.Package, child.Name, dep.RequiredBy))
		}
	}
	if len(waiting) > 0 {
		msg := "waiting for dependencies to be installed: " + strings.Join(waiting, "; ")
		setCondition(sub, v1alpha1.TypeProgressing, metav1.ConditionTrue, v1alpha1.ReasonDependencyNotReady, msg)
		if sub.Status.InstalledVersion == "" {
			sub.Status.State = v1alpha1.StateInstalling
			setCondition(sub, v1alpha1.TypeInstalled, metav1.ConditionFalse, v1alpha1.ReasonDependencyNotReady, msg)
		}
		st.requeue = r.healthRequeue()
		st.done = true
	}
	return nil
}

// childFor builds the child Subscription for a dependency: same namespace,
// the dependency's catalog and channel, its version to start with, and the
// range the parent requires.
func (r *Reconciler) childFor(st *state, dep resolver.Dependency) *v1alpha1.Subscription {
	parent := st.sub
	channel := ""
	for _, s := range st.catalogs {
		if s.Name != dep.Catalog {
			continue
		}
		if b := s.Catalog.Bundle(dep.Package, dep.Bundle); b != nil {
			p := s.Catalog.Package(dep.Package)
			channel = b.Channels[0]
			for _, c := range b.Channels {
				if c == p.DefaultChannel {
					channel = c
				}
			}
		}
	}
	versionRange := ""
	for _, s := range st.catalogs {
		if s.Name != st.target.Catalog {
			continue
		}
		if b := s.Catalog.Bundle(st.target.Package, st.target.Bundle); b != nil {
			for _, req := range b.RequiredPackages {
				if req.PackageName == dep.Package {
					versionRange = req.VersionRange
				}
			}
		}
	}
	child := &v1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{
			Name:        dep.Package,
			Namespace:   parent.Namespace,
			Labels:      map[string]string{LabelParent: parent.Name},
			Annotations: map[string]string{AnnotationRequiredBy: dep.RequiredBy},
		},
		Spec: v1alpha1.SubscriptionSpec{
			Catalog: dep.Catalog, Package: dep.Package, Channel: channel, VersionRange: versionRange,
			StartingVersion: dep.Version.String(), Approval: parent.Spec.Approval,
			InstallMode: parent.Spec.InstallMode,
		},
	}
	return child
}

// approve decides whether the target may be applied now.
func (r *Reconciler) approve(ctx context.Context, st *state) error {
	if st.keep {
		return nil
	}
	sub := st.sub
	installed := sub.Status.InstalledBundle
	t := st.target
	upgrade := installed != "" && installed != t.Bundle
	if !upgrade {
		setCondition(sub, v1alpha1.TypeUpgradeAvailable, metav1.ConditionFalse, v1alpha1.ReasonNoUpgrade, "no newer version is reachable")
		sub.Status.AvailableUpgrade = nil
	}
	if sub.Spec.Paused {
		setCondition(sub, v1alpha1.TypeProgressing, metav1.ConditionFalse, v1alpha1.ReasonPaused, "paused: nothing is changed until spec.paused is false")
		sub.Status.State = v1alpha1.StatePaused
		if upgrade {
			setCondition(sub, v1alpha1.TypeUpgradeAvailable, metav1.ConditionTrue, v1alpha1.ReasonPaused, fmt.Sprintf("%s %s is available; the Subscription is paused", t.Package, t.Version))
		}
		st.done = true
		return nil
	}
	if !upgrade {
		return nil
	}
	if st.decision.NeedsApproval && r.approvedTarget(st) {
		upgrade = installed != st.target.Bundle
		if !upgrade {
			return nil
		}
	}
	if !st.decision.NeedsApproval || sub.Spec.ApprovedVersion == st.target.Version.String() {
		// Automatic, or approved: the upgrade goes ahead now.
		sub.Status.AvailableUpgrade = nil
		setCondition(sub, v1alpha1.TypeUpgradeAvailable, metav1.ConditionFalse, v1alpha1.ReasonUpgrading,
			fmt.Sprintf("upgrading to %s %s (%s from %s)", t.Package, t.Version, st.decision.Edge.Kind, installed))
		return nil
	}
	// A Manual upgrade waits: the installed version keeps being applied
	// (so drift is corrected) and the status says what would change.
	newRendered, err := r.renderBundle(ctx, st, t.Catalog, t.Bundle, t.Version.String())
	changes := []string{}
	if err == nil {
		if old, oerr := r.renderBundle(ctx, st, sub.Status.Catalog, sub.Status.InstalledBundle, sub.Status.InstalledVersion); oerr == nil {
			changes = install.Changes(old, newRendered)
		}
	}
	sub.Status.AvailableUpgrade = &v1alpha1.AvailableUpgrade{
		Version: t.Version.String(), Bundle: t.Bundle, Edge: string(st.decision.Edge.Kind), Changes: changes,
	}
	setCondition(sub, v1alpha1.TypeUpgradeAvailable, metav1.ConditionTrue, v1alpha1.ReasonUpgradePending,
		fmt.Sprintf("%s %s is available (%s from %s); set spec.approvedVersion to %q to upgrade",
			t.Package, t.Version, st.decision.Edge.Kind, installed, t.Version.String()))
	sub.Status.State = v1alpha1.StateUpgradePending
	st.target = &resolver.Target{Catalog: sub.Status.Catalog, Package: sub.Spec.Package, Bundle: installed, Channel: t.Channel}
	if v, err := semver.Parse(sub.Status.InstalledVersion); err == nil {
		st.target.Version = v
	}
	return nil
}

func (r *Reconciler) healthRequeue() time.Duration {
	if r.HealthRequeue > 0 {
		return r.HealthRequeue
	}
	return 5 * time.Second
}

// finalize removes what the Subscription installed, then lets it go.
func (r *Reconciler) finalize(ctx context.Context, st *state) (reconcile.Result, error) {
	sub := st.sub
	if !controllerutil.ContainsFinalizer(sub, Finalizer) {
		return reconcile.Result{}, nil
	}
	policy := sub.Spec.CRDDeletionPolicy
	if policy == "" {
		policy = v1alpha1.CRDDeletionKeep
	}
	inventory, err := r.unsharedInventory(ctx, sub, policy)
	if err != nil {
		return reconcile.Result{}, err
	}
	res, err := r.applier().Uninstall(ctx, inventory, policy, install.ForOwner(types.NamespacedName{Namespace: sub.Namespace, Name: sub.Name}))
	if err != nil {
		return reconcile.Result{}, err
	}
	if res.Remaining > 0 {
		return reconcile.Result{RequeueAfter: time.Second}, nil
	}
	if err := r.revisions().deleteAll(ctx, sub); err != nil {
		return reconcile.Result{}, err
	}
	st.log.Info("operator uninstalled", "package", sub.Spec.Package, "version", sub.Status.InstalledVersion, "crdDeletionPolicy", string(policy))
	controllerutil.RemoveFinalizer(sub, Finalizer)
	return reconcile.Result{}, r.Client.Update(ctx, sub)
}

// writeStatus writes the status once, and only if it changed.
func (r *Reconciler) writeStatus(ctx context.Context, st *state) error {
	if equality.Semantic.DeepEqual(st.before, st.sub.Status) {
		return nil
	}
	return r.patchStatus(ctx, st)
}

// patchStatus writes the status as it is now (a merge patch against what was
// last written, so several writes in one reconcile do not conflict).
func (r *Reconciler) patchStatus(ctx context.Context, st *state) error {
	patch := ctrl.MergeFrom(st.orig)
	if err := r.Client.Status().Patch(ctx, st.sub, patch); err != nil {
		return err
	}
	st.orig = st.sub.DeepCopy()
	st.before = *st.sub.Status.DeepCopy()
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// unsharedInventory is what a deleted Subscription may remove: with
// crdDeletionPolicy Delete, a CRD another Subscription also installed stays.
func (r *Reconciler) unsharedInventory(ctx context.Context, sub *v1alpha1.Subscription, policy v1alpha1.CRDDeletionPolicy) ([]v1alpha1.ObjectReference, error) {
	if policy != v1alpha1.CRDDeletionDelete {
		return sub.Status.Inventory, nil
	}
	var list v1alpha1.SubscriptionList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil, err
	}
	shared := map[v1alpha1.ObjectReference]bool{}
	for _, o := range list.Items {
		if o.Namespace == sub.Namespace && o.Name == sub.Name {
			continue
		}
		for _, ref := range o.Status.Inventory {
			if ref.Kind == "CustomResourceDefinition" {
				shared[ref] = true
			}
		}
	}
	out := make([]v1alpha1.ObjectReference, 0, len(sub.Status.Inventory))
	for _, ref := range sub.Status.Inventory {
		if !shared[ref] {
			out = append(out, ref)
		}
	}
	return out, nil
}

// approvedTarget makes the approved version the target of a Manual
// Subscription when it is reachable from the installed bundle, though a
// newer version exists.
func (r *Reconciler) approvedTarget(st *state) bool {
	sub := st.sub
	if sub.Spec.ApprovedVersion == "" || sub.Spec.ApprovedVersion == st.target.Version.String() {
		return false
	}
	want, err := semver.Parse(sub.Spec.ApprovedVersion)
	if err != nil {
		return false
	}
	from, err := semver.Parse(sub.Status.InstalledVersion)
	if err != nil {
		return false
	}
	for _, s := range st.catalogs {
		if s.Name != st.target.Catalog {
			continue
		}
		p := s.Catalog.Package(sub.Spec.Package)
		if p == nil {
			return false
		}
		ch := p.Channel(st.target.Channel)
		if ch == nil {
			return false
		}
		for _, e := range ch.Entries {
			if e.Bundle.Version.EQ(want) {
				if _, ok := e.UpgradesFrom(sub.Status.InstalledBundle, &from); ok {
					st.target = &resolver.Target{Catalog: s.Name, Package: sub.Spec.Package, Bundle: e.Name, Version: want, Channel: ch.Name}
					return true
				}
			}
		}
	}
	return false
}

// applier is the Applier, reading ownership with the uncached reader when
// the Applier has no reader of its own: the manager's cache holds only
// objects labelled as Ferry's, so an object Ferry did not create would look
// absent in it.
func (r *Reconciler) applier() *install.Applier {
	if r.Applier.Reader != nil {
		return r.Applier
	}
	a := *r.Applier
	a.Reader = r.reader()
	return &a
}

// adoptionOf is the Subscription's adoption policy as an Apply option.
func adoptionOf(sub *v1alpha1.Subscription) install.ApplyOption {
	p := v1alpha1.AdoptionNone
	if sub.Spec.Adoption != nil && sub.Spec.Adoption.Policy != "" {
		p = sub.Spec.Adoption.Policy
	}
	return install.WithAdoption(p)
}

// ownershipConflict reports err, when it is about objects Ferry may not
// change, in the Subscription's status and stops the reconcile; it returns
// false for any other error. The objects are left as they are.
func (r *Reconciler) ownershipConflict(st *state, version string, err error) bool {
	var conflict *install.OwnershipConflictError
	if !errors.As(err, &conflict) {
		return false
	}
	sub := st.sub
	msg := fmt.Sprintf("%s %s cannot be installed, nothing was applied: %v", sub.Spec.Package, version, err)
	setCondition(sub, v1alpha1.TypeProgressing, metav1.ConditionFalse, v1alpha1.ReasonOwnershipConflict, msg)
	if sub.Status.InstalledVersion == "" {
		sub.Status.State = v1alpha1.StateFailed
		setCondition(sub, v1alpha1.TypeInstalled, metav1.ConditionFalse, v1alpha1.ReasonOwnershipConflict, msg)
	}
	sub.Status.Explanation = msg
	r.Recorder.Eventf(sub, nil, corev1.EventTypeWarning, v1alpha1.ReasonOwnershipConflict, "Apply", "%s", msg)
	st.log.Info("ownership conflict", "subscription", sub.Name, "package", sub.Spec.Package, "version", version, "error", err.Error())
	// Objects of other owners are not watched: look again later.
	st.requeue = time.Minute
	st.done = true
	return true
}
