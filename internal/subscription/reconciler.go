package subscription

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogsource"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/revision"
)

// Permissions of the Subscription controller. config/rbac/role.yaml is
// generated from the +kubebuilder:rbac markers of the installer's packages
// (make generate); docs/deploy.md explains each rule.
//
// Subscriptions are watched by the manager's cache (get, list, watch) and
// read from the API server at the start of each reconcile (get); the
// finalizer is added and removed with Update; the child Subscription of a
// missing dependency is created as the parent's ServiceAccount, not by the
// installer (see Tenancy); the retry annotation is removed with
// a merge Patch; status is written with Status().Patch. Events on
// Subscriptions go through the manager's events.k8s.io recorder, which
// creates an event and patches it when it repeats.
//
// +kubebuilder:rbac:groups=operators.ferry.dev,resources=subscriptions,verbs=get;list;watch;update;patch
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
	// Applier reads and writes installed objects; each Subscription's
	// copy writes as its ServiceAccount (Tenancy).
	Applier  *install.Applier
	Recorder events.EventRecorder
	// Tenancy makes each Subscription's writes as its ServiceAccount; a
	// Subscription is not acted for when it is nil.
	Tenancy *Tenancy
	// CRDs checks CRD changes before they are applied; no checks when nil.
	CRDs CRDChecker
	// HealthRequeue is how often a Subscription waiting for its operator to
	// become healthy is looked at again.
	HealthRequeue time.Duration
	// KubeVersion tells the cluster's Kubernetes version, which a bundle's
	// spec.minKubeVersion must not exceed; SetupWithManager reads it from
	// the manager's discovery when nil.
	KubeVersion KubeVersionSource

	// minKube keeps the minimum Kubernetes version of the bundles whose
	// manifests were fetched.
	minKube minKubeVersions

	// pending keeps the live diff of each pending Manual upgrade.
	pending pendingDiffs

	// applied is what was last applied for each Subscription, and the
	// drift signals heard of since; reapplyBound is how long a health
	// recheck without drift may go without applying again: the resync
	// period once the drift watches run (SetupWithManager), 0 (apply on
	// every recheck) before.
	applied      appliedRecords
	reapplyBound time.Duration
}

// CannotActError says why the installer may not act for a Subscription now
// (for instance its ServiceAccount is missing or lacks permissions). When
// applierFor returns it, nothing is changed and the Subscription gets a
// Progressing condition with Reason (ReasonCannotAct when empty) and the
// message; the Subscription is looked at again later.
type CannotActError struct {
	// Reason is the condition reason, one of api/v1alpha1's Reason constants.
	Reason string
	// Err says what is wrong and how to fix it.
	Err error
}

func (e *CannotActError) Error() string { return e.Err.Error() }
func (e *CannotActError) Unwrap() error { return e.Err }

// applierFor is the one way to an Applier for a Subscription: every read
// and write of installed objects goes through what it returns. It reads
// ownership with the uncached reader when the Applier has no reader of its
// own: the manager's cache holds only objects labelled as Ferry's, so an
// object Ferry did not create would look absent in it. Its writes are made
// as the Subscription's ServiceAccount, each Apply and Uninstall checked
// first (Tenancy). An error (a *CannotActError says why) becomes a
// condition, never a crash loop.
func (r *Reconciler) applierFor(ctx context.Context, sub *v1alpha1.Subscription) (*install.Applier, error) {
	base := r.Applier
	if base.Reader == nil {
		a := *r.Applier
		a.Reader = r.reader()
		base = &a
	}
	return r.tenantApplier(ctx, sub, base)
}

// exec is what the actions of one reconcile share.
type exec struct {
	sub *v1alpha1.Subscription
	// orig is the Subscription as last written, the base of status
	// patches; before its status.
	orig   *v1alpha1.Subscription
	before v1alpha1.SubscriptionStatus
	// ap is the Subscription's Applier; nil when applierFor failed.
	ap  *install.Applier
	log logr.Logger
	// heard is the count of drift signals for the Subscription when the
	// reconcile started (appliedRecords).
	heard uint64
}

// Reconcile observes a Subscription, decides what to do, does it, and
// summarizes the outcome in the status. A reconcile cut short by shutdown
// (its context canceled) ends quietly: no error, nothing more written; the
// next installer to run reconciles every Subscription again.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	res, err := r.reconcile(ctx, req)
	if err != nil && shutDown(ctx) {
		log.FromContext(ctx).V(1).Info("reconcile stopped by shutdown", "error", err.Error())
		return reconcile.Result{}, nil
	}
	return res, err
}

// shutDown reports whether ctx was canceled: the manager is stopping. A
// deadline is not shutdown.
func shutDown(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled)
}

func (r *Reconciler) reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	// The Subscription is read from the API server, not the cache: the
	// status written by the previous reconcile (current revision, installed
	// version) must be seen, or a revision could be recorded twice.
	// Read before the Subscription: a drift signal while it is reconciled
	// counts as not applied yet.
	heard := r.applied.heardOf(req.NamespacedName)
	sub := &v1alpha1.Subscription{}
	if err := r.reader().Get(ctx, req.NamespacedName, sub); err != nil {
		if apierrors.IsNotFound(err) {
			r.applied.forget(req.NamespacedName)
		}
		return reconcile.Result{}, ctrl.IgnoreNotFound(err)
	}
	if sub.DeletionTimestamp.IsZero() && controllerutil.AddFinalizer(sub, Finalizer) {
		if err := r.Client.Update(ctx, sub); err != nil {
			return reconcile.Result{}, err
		}
	}
	x := &exec{sub: sub, orig: sub.DeepCopy(), before: *sub.Status.DeepCopy(), log: log.FromContext(ctx), heard: heard}
	ap, apErr := r.applierFor(ctx, sub)
	if apErr == nil {
		x.ap = ap
	}
	f, err := r.observe(ctx, sub, x.ap)
	if err != nil {
		if shutDown(ctx) {
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, r.failedToRead(ctx, x, err)
	}
	f.cannotAct = apErr
	d := decide(f, healthTimeout(sub))
	x.log.V(1).Info("decided", "subscription", sub.Name, "action", string(d.action), "reason", d.reason)
	d, res := r.run(ctx, x, f, d)
	if d.action == actFinalize && res.err == nil && res.progressing == nil {
		return reconcile.Result{RequeueAfter: res.requeue}, nil
	}
	if res.err != nil && shutDown(ctx) {
		// The action failed because the installer stops: that is no
		// failure of the Subscription, and nothing more is written.
		return reconcile.Result{}, res.err
	}
	summarize(f, d, res)
	r.untrusted(x, res.err)
	if err := r.writeStatus(ctx, x); err != nil {
		return reconcile.Result{}, errors.Join(res.err, err)
	}
	if res.err != nil {
		return reconcile.Result{}, res.err
	}
	requeue := res.requeue
	if requeue == 0 {
		requeue = d.requeue
	}
	return reconcile.Result{RequeueAfter: requeue}, nil
}

// failedToRead handles an error of observe: a stored revision that was
// refused is said in the status; anything else is retried.
func (r *Reconciler) failedToRead(ctx context.Context, x *exec, err error) error {
	if r.untrusted(x, err) {
		return errors.Join(err, r.writeStatus(ctx, x))
	}
	return err
}

// untrusted says so in the status when err is a stored revision this
// reconcile needed and refused.
func (r *Reconciler) untrusted(x *exec, err error) bool {
	var untrusted *revision.UntrustedError
	if !errors.As(err, &untrusted) {
		return false
	}
	msg := summarizeUntrusted(x.sub, err)
	r.Recorder.Eventf(x.sub, nil, corev1.EventTypeWarning, v1alpha1.ReasonRevisionUntrusted, "LoadRevision", "%s", msg)
	return true
}

// run acts on d, the decision for f. One fact is only learned by acting:
// that the current revision cannot be applied, past its health timeout.
// The action that learns it changes nothing; the fact is added and decide
// picks again (a rollback, or the gate marked failed), so that the
// decision, the conditions and status.state say what is done. It returns
// the decision acted on last, with its result; at most two actions.
func (r *Reconciler) run(ctx context.Context, x *exec, f *facts, d decision) (decision, result) {
	res := r.act(ctx, x, f, d)
	if res.applyFailed == nil || f.applyFailed != nil {
		return d, res
	}
	f.applyFailed = res.applyFailed
	d = decide(f, healthTimeout(f.sub))
	x.log.V(1).Info("decided again", "subscription", f.sub.Name, "action", string(d.action), "reason", d.reason, "applyError", f.applyFailed.Error())
	return d, r.act(ctx, x, f, d)
}

// act runs the decided action.
func (r *Reconciler) act(ctx context.Context, x *exec, f *facts, d decision) result {
	if c := f.candidate; c != nil && c.crd != nil && c.crd.Blocked {
		r.Recorder.Eventf(x.sub, nil, corev1.EventTypeWarning, v1alpha1.ReasonCRDUnsafe, "CheckCRD", "%s", d.explanation)
	}
	switch d.action {
	case actFinalize:
		return r.finalize(ctx, x)
	case actCannotAct, actRefuse, actFail:
		return r.markFailed(x, d)
	case actHold:
		return hold(d)
	case actWaitCatalog:
		return waitCatalog(d)
	case actWaitDependencies:
		return r.waitDependencies(ctx, x, f, d)
	case actInstall:
		return r.install(ctx, x, f, d)
	case actWaitHealthy, actWaitCluster:
		return r.waitHealthy(ctx, x, f, d)
	case actRollback:
		return r.rollback(ctx, x, f, d.prev, d.message)
	case actGateFailed:
		return r.gateFailed(ctx, x, f, d.message)
	case actInSync, actHoldForApproval:
		return r.inSync(ctx, x, f, d)
	case actReleaseDependencies:
		return r.releaseDependencies(ctx, x, f, d)
	}
	return result{err: fmt.Errorf("no action %q", d.action)}
}

func (r *Reconciler) healthRequeue() time.Duration {
	if r.HealthRequeue > 0 {
		return r.HealthRequeue
	}
	return 5 * time.Second
}

// writeStatus writes the status once, and only if it changed.
func (r *Reconciler) writeStatus(ctx context.Context, x *exec) error {
	if equality.Semantic.DeepEqual(x.before, x.sub.Status) {
		return nil
	}
	return r.patchStatus(ctx, x)
}

// patchStatus writes the status as it is now (a merge patch against what was
// last written, so several writes in one reconcile do not conflict).
func (r *Reconciler) patchStatus(ctx context.Context, x *exec) error {
	patch := ctrl.MergeFrom(x.orig)
	if err := r.Client.Status().Patch(ctx, x.sub, patch); err != nil {
		return err
	}
	x.orig = x.sub.DeepCopy()
	x.before = *x.sub.Status.DeepCopy()
	return nil
}
