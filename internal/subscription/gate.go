package subscription

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/blang/semver/v4"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogsource"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/resolver"
)

// AnnotationRetryUpgrade set to the version of status.failedUpgrade lets
// that version be tried again.
const AnnotationRetryUpgrade = "operators.ferry.dev/retry-upgrade"

// Revision reasons.
const (
	reasonInstall     = "Install"
	reasonUpgrade     = "Upgrade"
	reasonReconfigure = "Reconfigure"
	reasonRollback    = "Rollback"
	reasonDowngrade   = "Downgrade"
)

// revisionTarget names the bundle a revision installs.
type revisionTarget struct {
	catalog, bundle, version string
}

// desired is what a reconcile applies.
type desired struct {
	target  revisionTarget
	objects []*unstructured.Unstructured
	// apply is objects less the installed CRDs that must stay as they are.
	apply  []*unstructured.Unstructured
	digest string
	reason string
	// rollbackOf is the revision whose objects are restored.
	rollbackOf int64
}

func (r *Reconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

func (r *Reconciler) revisions() *revisions {
	return &revisions{client: r.Client, reader: r.reader()}
}

// loadCurrent reads the revision now applied.
// Revisions are the source of truth: when the newest one is newer than
// status says (the installer stopped before writing status), it is adopted.
func (r *Reconciler) loadCurrent(ctx context.Context, st *state) error {
	all, err := r.revisions().list(ctx, st.sub)
	if err != nil {
		return err
	}
	for i := range all {
		if all[i].Spec.Revision == st.sub.Status.CurrentRevision {
			st.current = &all[i]
		}
	}
	for i := len(all) - 1; i >= 0; i-- {
		rev := &all[i]
		if rev.Spec.Revision <= st.sub.Status.CurrentRevision || rev.Status.Outcome == v1alpha1.OutcomeSuperseded {
			break
		}
		if rev.Status.Outcome == v1alpha1.OutcomeRolledBack || rev.Status.Outcome == v1alpha1.OutcomeFailed {
			continue
		}
		st.current = rev
		st.sub.Status.CurrentRevision = rev.Spec.Revision
		break
	}
	return nil
}

// pin restores the revision named by spec.rollbackTo and keeps it.
func (r *Reconciler) pin(ctx context.Context, st *state) error {
	sub := st.sub
	if sub.Spec.Paused {
		setCondition(sub, v1alpha1.TypeProgressing, metav1.ConditionFalse, v1alpha1.ReasonPaused, "paused: nothing is changed until spec.paused is false")
		sub.Status.State = v1alpha1.StatePaused
		st.done = true
		return nil
	}
	n := sub.Spec.RollbackTo.Revision
	rev, err := r.revisions().get(ctx, sub, n)
	if err != nil {
		return err
	}
	if rev == nil {
		msg := fmt.Sprintf("spec.rollbackTo names revision %d, which does not exist (kubectl get revisions -n %s -l %s=%s)", n, sub.Namespace, LabelSubscription, install.LabelValue(sub.Name))
		setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionFalse, v1alpha1.ReasonRollbackRequested, msg)
		sub.Status.Explanation = msg
		st.done = true
		return nil
	}
	objs, err := r.revisions().load(ctx, sub, rev)
	var untrusted *untrustedRevisionError
	if errors.As(err, &untrusted) {
		msg := fmt.Sprintf("spec.rollbackTo names revision %d, which is refused: %v; nothing was applied", n, err)
		setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionFalse, v1alpha1.ReasonRevisionUntrusted, msg)
		sub.Status.Explanation = msg
		r.Recorder.Eventf(sub, nil, corev1.EventTypeWarning, v1alpha1.ReasonRevisionUntrusted, "Rollback", "%s", msg)
		st.log.Info("revision refused", "subscription", sub.Name, "revision", n, "reason", err.Error())
		st.done = true
		return nil
	}
	if err != nil {
		return err
	}
	setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionTrue, v1alpha1.ReasonPinned,
		fmt.Sprintf("pinned to revision %d (%s %s) by spec.rollbackTo; remove it to resume upgrades", n, rev.Spec.Package, rev.Spec.Version))
	sub.Status.Explanation = ""
	st.target = &resolver.Target{Catalog: rev.Spec.Catalog, Package: rev.Spec.Package, Bundle: rev.Spec.Bundle}
	st.target.Version, _ = semver.Parse(rev.Spec.Version)
	st.want = &desired{
		target:  revisionTarget{rev.Spec.Catalog, rev.Spec.Bundle, rev.Spec.Version},
		objects: objs, reason: reasonRollback, rollbackOf: n,
	}
	return nil
}

// renderBundle fetches a bundle's manifests and renders them for this Subscription.
func (r *Reconciler) renderBundle(ctx context.Context, st *state, catalogName, bundle, version string) (*install.Rendered, error) {
	sub := st.sub
	ms, err := r.Catalogs.Manifests(ctx, catalogName, sub.Spec.Package, bundle)
	if err != nil {
		return nil, err
	}
	return install.Render(install.Input{
		Owner:     types.NamespacedName{Namespace: sub.Namespace, Name: sub.Name},
		Namespace: sub.Namespace, Package: sub.Spec.Package, Version: version, Bundle: bundle,
		Manifests: ms, InstallMode: sub.Spec.InstallMode, Config: sub.Spec.Config,
	})
}

// CRDCheck is the verdict on the CRD changes of a version.
type CRDCheck struct {
	// Findings name the CRD, the object and the field of each problem.
	Findings []string
	// Blocked is true when the policy forbids the change.
	Blocked bool
}

// CRDChecker checks a CRD change against the data in the cluster.
type CRDChecker interface {
	Check(ctx context.Context, live, next *apiextensionsv1.CustomResourceDefinition, policy v1alpha1.CRDUpgradeSafety) (CRDCheck, error)
}

// render works out the objects of the target.
func (r *Reconciler) render(ctx context.Context, st *state) error {
	sub := st.sub
	if st.keep {
		return r.keepCurrent(ctx, st, "")
	}
	if d, ok, err := r.downgradeTarget(ctx, st); err != nil {
		return err
	} else if ok {
		st.want = d
		st.target = &resolver.Target{Catalog: d.target.catalog, Package: sub.Spec.Package, Bundle: d.target.bundle}
		st.target.Version, _ = semver.Parse(d.target.version)
		setCondition(sub, v1alpha1.TypeResolved, metav1.ConditionTrue, v1alpha1.ReasonDowngrading,
			fmt.Sprintf("downgrading to %s %s: the installed %s is outside versionRange %q and allowDowngrade is set", sub.Spec.Package, d.target.version, sub.Status.InstalledVersion, sub.Spec.VersionRange))
		return nil
	}
	t := st.target
	rendered, err := r.renderBundle(ctx, st, t.Catalog, t.Bundle, t.Version.String())
	if err == nil {
		reason := reasonUpgrade
		switch sub.Status.InstalledBundle {
		case "":
			reason = reasonInstall
		case t.Bundle:
			reason = reasonReconfigure
		}
		st.want = &desired{target: revisionTarget{t.Catalog, t.Bundle, t.Version.String()}, objects: rendered.Objects, reason: reason}
		return nil
	}
	var invalid *install.InvalidBundleError
	var mode *install.UnsupportedInstallModeError
	var mismatch *catalogsource.ContentMismatchError
	var reason string
	switch {
	case errors.As(err, &invalid):
		reason = v1alpha1.ReasonInvalidBundle
	case errors.As(err, &mismatch):
		// The catalog's answer does not match what it announced: nothing
		// of it is applied, and nothing is retried until the catalog changes.
		reason = v1alpha1.ReasonContentMismatch
	case errors.As(err, &mode):
		reason = v1alpha1.ReasonUnsupportedMode
	case st.current != nil && st.current.Spec.Bundle == t.Bundle:
		// The catalog cannot give the installed bundle (unreachable, or it no
		// longer has it): keep applying what is installed, from its revision.
		objs, lerr := r.revisions().load(ctx, sub, st.current)
		if lerr != nil {
			return errors.Join(err, lerr)
		}
		st.want = &desired{target: revisionTarget{st.current.Spec.Catalog, st.current.Spec.Bundle, st.current.Spec.Version}, objects: objs, reason: reasonReconfigure}
		return nil
	default:
		setCondition(sub, v1alpha1.TypeProgressing, metav1.ConditionTrue, v1alpha1.ReasonCatalogUnavailable, fmt.Sprintf("fetching %s: %v", t.Bundle, err))
		st.requeue = r.healthRequeue()
		st.done = true
		return nil
	}
	msg := fmt.Sprintf("%s %s cannot be installed, nothing was applied: %v", t.Package, t.Version, err)
	if sub.Status.InstalledVersion == "" {
		sub.Status.State = v1alpha1.StateFailed
		setCondition(sub, v1alpha1.TypeInstalled, metav1.ConditionFalse, reason, msg)
	}
	sub.Status.Explanation = msg
	setCondition(sub, v1alpha1.TypeProgressing, metav1.ConditionFalse, reason, msg)
	st.done = true
	return nil
}

// keepCRDVersions drops from objs every CRD whose live object stores a
// version the object no longer has: applying it would be refused, and the
// data stored in that version must stay readable. The live CRD is kept. In a
// rollback (restoring older objects) no installed CRD is changed at all, as
// Helm and Flux do: the newer schema keeps every field the data may have;
// only a CRD that is missing is created.
func (r *Reconciler) keepCRDVersions(ctx context.Context, objs []*unstructured.Unstructured, rollback bool) ([]*unstructured.Unstructured, []string, error) {
	var out []*unstructured.Unstructured
	var kept []string
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			out = append(out, o)
			continue
		}
		live := &apiextensionsv1.CustomResourceDefinition{}
		err := r.reader().Get(ctx, types.NamespacedName{Name: o.GetName()}, live)
		if apierrors.IsNotFound(err) {
			out = append(out, o)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if rollback {
			kept = append(kept, fmt.Sprintf("CRD %s kept as it is: restoring or re-applying an installed version never changes an installed CRD", o.GetName()))
			continue
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, crd); err != nil {
			return nil, nil, fmt.Errorf("CRD %s: %w", o.GetName(), err)
		}
		missing := missingStoredVersions(live, crd)
		if len(missing) > 0 {
			kept = append(kept, fmt.Sprintf("CRD %s kept as it is: objects are stored in %s, which the restored version does not define", o.GetName(), strings.Join(missing, ", ")))
			continue
		}
		out = append(out, o)
	}
	return out, kept, nil
}

func missingStoredVersions(live, next *apiextensionsv1.CustomResourceDefinition) []string {
	var missing []string
	for _, v := range live.Status.StoredVersions {
		if !slices.ContainsFunc(next.Spec.Versions, func(cv apiextensionsv1.CustomResourceDefinitionVersion) bool { return cv.Name == v }) {
			missing = append(missing, v)
		}
	}
	return missing
}

// record makes a new revision when what is to be applied differs from what
// is, and refuses content that already failed its health gate. A revision
// records the objects of the version as rendered; what is applied leaves out
// installed CRDs that must not change (see keepCRDVersions).
func (r *Reconciler) record(ctx context.Context, st *state) error {
	sub := st.sub
	digest, err := ObjectsDigest(st.want.objects)
	if err != nil {
		return err
	}
	if st.want.reason != reasonRollback {
		failed, err := r.failedWith(ctx, st, digest)
		if err != nil {
			return err
		}
		if failed != nil {
			if sub.Annotations[AnnotationRetryUpgrade] != failed.Spec.Version {
				advice := "until a newer version appears"
				if failed.Spec.Reason == reasonReconfigure {
					advice = "until spec.config changes"
				}
				if err := r.keepCurrent(ctx, st, fmt.Sprintf("%s %s failed its health gate in revision %d (%s) and is not tried again %s or the annotation %s=%s is set",
					sub.Spec.Package, failed.Spec.Version, failed.Spec.Revision, failed.Status.Message, advice, AnnotationRetryUpgrade, failed.Spec.Version)); err != nil || st.done {
					return err
				}
				if digest, err = ObjectsDigest(st.want.objects); err != nil {
					return err
				}
			} else {
				// The retry is granted once: the annotation is consumed.
				if err := r.consumeRetry(ctx, st); err != nil {
					return err
				}
				sub.Status.FailedUpgrade = nil
			}
		}
	}
	st.want.digest = digest
	// Only a new version changes a CRD: restoring, downgrading or re-applying
	// the installed version leaves installed CRDs as they are.
	keepCRDs := st.want.reason != reasonInstall && st.want.reason != reasonUpgrade
	apply, kept, err := r.keepCRDVersions(ctx, st.want.objects, keepCRDs)
	if err != nil {
		return err
	}
	st.want.apply = apply
	if len(kept) > 0 {
		st.log.Info("CRD left in place", "subscription", sub.Name, "reason", strings.Join(kept, "; "))
	}
	if st.current != nil && st.current.Spec.ContentDigest == digest {
		return nil
	}
	// Every object is checked for ownership before a revision is recorded:
	// content that would take over an object Ferry did not create for this
	// Subscription is never recorded nor applied.
	if err := r.applier().Preflight(ctx, r.rendered(sub, st.want.target, apply), adoptionOf(sub)); err != nil {
		if r.ownershipConflict(st, st.want.target.version, err) {
			return nil
		}
		return err
	}
	rev, err := r.revisions().create(ctx, sub, newRevision{target: st.want.target, objects: st.want.objects, reason: st.want.reason, rollbackOf: st.want.rollbackOf},
		func() error { return r.patchStatus(ctx, st) })
	if err != nil {
		return err
	}
	st.current = rev
	sub.Status.CurrentRevision = rev.Spec.Revision
	// Written now: a crash before the end of the reconcile must not lose
	// which revision is being applied, nor what it may create.
	sub.Status.Inventory = unionInventory(sub.Status.Inventory, inventoryOf(apply))
	if err := r.patchStatus(ctx, st); err != nil {
		return err
	}
	st.log.Info("revision recorded", "subscription", sub.Name, "revision", rev.Spec.Revision, "version", rev.Spec.Version, "reason", rev.Spec.Reason)
	return nil
}

// keepCurrent applies the current revision again instead of the target.
// When the current revision itself failed (the installer stopped in the
// middle of a rollback), the last healthy revision is restored instead.
func (r *Reconciler) keepCurrent(ctx context.Context, st *state, why string) error {
	return r.keepCurrentBecause(ctx, st, v1alpha1.ReasonUpgradeFailed, why)
}

// keepCurrentBecause is keepCurrent with the UpgradeAvailable reason: an
// upgrade that failed before is not available; one a CRD check blocks is.
func (r *Reconciler) keepCurrentBecause(ctx context.Context, st *state, reason, why string) error {
	sub := st.sub
	if why != "" {
		status := metav1.ConditionFalse
		if reason == v1alpha1.ReasonCRDUnsafe {
			status = metav1.ConditionTrue
		}
		setCondition(sub, v1alpha1.TypeUpgradeAvailable, status, reason, why)
	}
	keep, keepReason, rollbackOf := st.current, reasonReconfigure, int64(0)
	if keep != nil && (keep.Status.Outcome == v1alpha1.OutcomeRolledBack || keep.Status.Outcome == v1alpha1.OutcomeFailed) {
		all, err := r.revisions().list(ctx, sub)
		if err != nil {
			return err
		}
		keep = nil
		for i := range all {
			if all[i].Status.Outcome == v1alpha1.OutcomeHealthy {
				keep = &all[i]
			}
		}
		if keep != nil {
			keepReason, rollbackOf = reasonRollback, keep.Spec.Revision
		}
	}
	if keep == nil {
		st.done = true
		return nil
	}
	objs, err := r.revisions().load(ctx, sub, keep)
	if err != nil {
		return err
	}
	st.want = &desired{target: revisionTarget{keep.Spec.Catalog, keep.Spec.Bundle, keep.Spec.Version}, objects: objs, reason: keepReason, rollbackOf: rollbackOf}
	st.target = &resolver.Target{Catalog: keep.Spec.Catalog, Package: keep.Spec.Package, Bundle: keep.Spec.Bundle}
	st.target.Version, _ = semver.Parse(keep.Spec.Version)
	return nil
}

// failedWith returns a revision with this content that failed its health
// gate, if any.
func (r *Reconciler) failedWith(ctx context.Context, st *state, digest string) (*v1alpha1.Revision, error) {
	all, err := r.revisions().list(ctx, st.sub)
	if err != nil {
		return nil, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		o := all[i].Status.Outcome
		if all[i].Spec.ContentDigest == digest && (o == v1alpha1.OutcomeRolledBack || o == v1alpha1.OutcomeFailed) {
			return &all[i], nil
		}
		if all[i].Spec.ContentDigest == digest && o == v1alpha1.OutcomeHealthy {
			return nil, nil
		}
	}
	return nil, nil
}

// consumeRetry removes the retry annotation once it has been honoured.
func (r *Reconciler) consumeRetry(ctx context.Context, st *state) error {
	obj := &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: st.sub.Namespace, Name: st.sub.Name}}
	patch := []byte(`{"metadata":{"annotations":{"` + AnnotationRetryUpgrade + `":null}}}`)
	if err := r.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return err
	}
	delete(st.sub.Annotations, AnnotationRetryUpgrade)
	return nil
}

func inventoryOf(objs []*unstructured.Unstructured) []v1alpha1.ObjectReference {
	out := make([]v1alpha1.ObjectReference, 0, len(objs))
	for _, o := range objs {
		out = append(out, install.Ref(o))
	}
	return out
}

func unionInventory(a, b []v1alpha1.ObjectReference) []v1alpha1.ObjectReference {
	seen := map[v1alpha1.ObjectReference]bool{}
	var out []v1alpha1.ObjectReference
	for _, list := range [][]v1alpha1.ObjectReference{a, b} {
		for _, o := range list {
			if !seen[o] {
				seen[o] = true
				out = append(out, o)
			}
		}
	}
	return out
}

// rendered is what Apply and Preflight take for objects of the Subscription.
func (r *Reconciler) rendered(sub *v1alpha1.Subscription, t revisionTarget, objs []*unstructured.Unstructured) *install.Rendered {
	return &install.Rendered{
		Objects: objs, Owner: types.NamespacedName{Namespace: sub.Namespace, Name: sub.Name},
		Namespace: sub.Namespace, Package: sub.Spec.Package, Version: t.version, Bundle: t.bundle,
	}
}

// apply applies the wanted objects with server-side apply.
func (r *Reconciler) apply(ctx context.Context, st *state) error {
	sub := st.sub
	w := st.want
	res, err := r.applier().Apply(ctx, r.rendered(sub, w.target, w.apply), sub.Status.Inventory, adoptionOf(sub))
	if len(res.Inventory) > 0 {
		sub.Status.Inventory = res.Inventory
	}
	if err != nil && r.ownershipConflict(st, w.target.version, err) {
		return nil
	}
	if err != nil {
		msg := fmt.Sprintf("applying %s %s: %v", sub.Spec.Package, w.target.version, err)
		setCondition(sub, v1alpha1.TypeProgressing, metav1.ConditionTrue, v1alpha1.ReasonApplyFailed, msg)
		if st.current != nil && st.current.Status.Outcome == v1alpha1.OutcomeProgressing && pastGate(sub, st.current) {
			// A revision that cannot even be applied fails its gate too.
			return r.gateFailed(ctx, st, "apply failed: "+err.Error())
		}
		return err
	}
	sub.Status.TargetVersion = w.target.version
	return nil
}

// checkHealth is the health gate: the current revision is healthy when every
// Deployment has rolled out and every CRD is established, within the
// Subscription's health timeout. A revision that misses it is rolled back.
func (r *Reconciler) checkHealth(ctx context.Context, st *state) error {
	sub := st.sub
	rev := st.current
	h, err := r.applier().Health(ctx, sub.Status.Inventory)
	if err != nil {
		return err
	}
	upgrading := sub.Status.InstalledBundle != "" && sub.Status.InstalledBundle != rev.Spec.Bundle
	if !h.Healthy {
		if rev.Status.Outcome == v1alpha1.OutcomeProgressing && pastGate(sub, rev) {
			return r.gateFailed(ctx, st, h.Message)
		}
		if rev.Status.Outcome == v1alpha1.OutcomeFailed {
			// Failed its gate with nothing to return to; it stays failed
			// until it becomes healthy after all.
			st.requeue = r.healthRequeue()
			return nil
		}
		msg := fmt.Sprintf("waiting for %s %s (revision %d) to become healthy: %s", rev.Spec.Package, rev.Spec.Version, rev.Spec.Revision, h.Message)
		setCondition(sub, v1alpha1.TypeProgressing, metav1.ConditionTrue, v1alpha1.ReasonWaitingForHealthy, msg)
		switch {
		case upgrading:
			sub.Status.State = v1alpha1.StateUpgrading
		case sub.Status.InstalledBundle == "":
			sub.Status.State = v1alpha1.StateInstalling
			setCondition(sub, v1alpha1.TypeInstalled, metav1.ConditionFalse, v1alpha1.ReasonInstalling, msg)
		default:
			setCondition(sub, v1alpha1.TypeInstalled, metav1.ConditionFalse, v1alpha1.ReasonWaitingForHealthy, msg)
		}
		st.requeue = r.healthRequeue()
		return nil
	}
	if rev.Status.Outcome != v1alpha1.OutcomeHealthy {
		if err := r.revisions().finish(ctx, rev, v1alpha1.OutcomeHealthy, "passed the health gate"); err != nil {
			return err
		}
		if f := sub.Status.FailedUpgrade; f != nil && rev.Spec.Reason != reasonRollback && f.ContentDigest != rev.Spec.ContentDigest {
			sub.Status.FailedUpgrade = nil
		}
	}
	if sub.Status.InstalledBundle != rev.Spec.Bundle {
		verb, reason := "installed", "Installed"
		switch {
		case rev.Spec.Reason == reasonRollback:
			verb, reason = "rolled back to", "RolledBack"
		case rev.Spec.Reason == reasonDowngrade:
			verb, reason = "downgraded to", "Downgraded"
		case upgrading:
			verb, reason = "upgraded to", "Upgraded"
		}
		r.Recorder.Eventf(sub, nil, corev1.EventTypeNormal, reason, "Install", "%s %s %s from catalog %q (revision %d)", rev.Spec.Package, verb, rev.Spec.Version, rev.Spec.Catalog, rev.Spec.Revision)
		st.log.Info("operator "+verb, "package", rev.Spec.Package, "version", rev.Spec.Version, "catalog", rev.Spec.Catalog, "revision", rev.Spec.Revision)
		// Resolve again from the new installed version: an upgrade may
		// already be reachable from it.
		st.requeue = time.Millisecond
	}
	if rev.Spec.Reason != reasonRollback {
		if c := meta.FindStatusCondition(sub.Status.Conditions, v1alpha1.TypeRolledBack); c != nil && c.Status == metav1.ConditionTrue && rev.Spec.Reason != reasonReconfigure {
			setCondition(sub, v1alpha1.TypeRolledBack, metav1.ConditionFalse, v1alpha1.ReasonInstalled, fmt.Sprintf("revision %d (%s) is healthy", rev.Spec.Revision, rev.Spec.Version))
		}
	}
	sub.Status.InstalledVersion = rev.Spec.Version
	sub.Status.InstalledBundle = rev.Spec.Bundle
	sub.Status.Catalog = rev.Spec.Catalog
	setCondition(sub, v1alpha1.TypeInstalled, metav1.ConditionTrue, v1alpha1.ReasonInstalled, fmt.Sprintf("%s %s is installed and healthy (revision %d)", rev.Spec.Package, rev.Spec.Version, rev.Spec.Revision))
	if sub.Status.AvailableUpgrade == nil {
		setCondition(sub, v1alpha1.TypeProgressing, metav1.ConditionFalse, v1alpha1.ReasonInstalled, "nothing to do")
		sub.Status.State = v1alpha1.StateInstalled
	} else {
		sub.Status.State = v1alpha1.StateUpgradePending
	}
	return nil
}

// pastGate reports whether a revision has had its whole health timeout.
func pastGate(sub *v1alpha1.Subscription, rev *v1alpha1.Revision) bool {
	started := rev.CreationTimestamp.Time
	if rev.Status.StartedAt != nil {
		started = rev.Status.StartedAt.Time
	}
	return time.Since(started) > healthTimeout(sub)
}

func healthTimeout(sub *v1alpha1.Subscription) time.Duration {
	if sub.Spec.HealthTimeout != nil && sub.Spec.HealthTimeout.Duration > 0 {
		return sub.Spec.HealthTimeout.Duration
	}
	return DefaultHealthTimeout
}

// gateFailed handles a revision that missed its health gate: it restores the
// last healthy revision when the policy allows, or marks the revision failed.
func (r *Reconciler) gateFailed(ctx context.Context, st *state, cause string) error {
	sub := st.sub
	rev := st.current
	revs := r.revisions()
	sub.Status.FailedUpgrade = &v1alpha1.FailedUpgrade{
		Version: rev.Spec.Version, Bundle: rev.Spec.Bundle, Revision: rev.Spec.Revision,
		ContentDigest: rev.Spec.ContentDigest, Reason: cause, Time: metav1.Now(),
	}
	timeout := healthTimeout(sub)
	var prev *v1alpha1.Revision
	if rev.Spec.Reason != reasonRollback && rev.Spec.Reason != reasonInstall && sub.Spec.RollbackPolicy != v1alpha1.RollbackNever {
		all, err := revs.list(ctx, sub)
		if err != nil {
			return err
		}
		for i := range all {
			if all[i].Spec.Revision < rev.Spec.Revision && all[i].Status.Outcome == v1alpha1.OutcomeHealthy {
				prev = &all[i]
			}
		}
	}
	if prev == nil {
		msg := fmt.Sprintf("revision %d (%s %s) did not become healthy within %s: %s", rev.Spec.Revision, rev.Spec.Package, rev.Spec.Version, timeout, cause)
		if err := revs.finish(ctx, rev, v1alpha1.OutcomeFailed, msg); err != nil {
			return err
		}
		setCondition(sub, v1alpha1.TypeProgressing, metav1.ConditionFalse, v1alpha1.ReasonHealthGateFailed, msg)
		if sub.Status.InstalledBundle == "" {
			setCondition(sub, v1alpha1.TypeInstalled, metav1.ConditionFalse, v1alpha1.ReasonHealthGateFailed, msg)
		}
		sub.Status.State = v1alpha1.StateFailed
		r.Recorder.Eventf(sub, nil, corev1.EventTypeWarning, v1alpha1.ReasonHealthGateFailed, "HealthCheck", "%s", msg)
		return nil
	}
	objs, err := revs.load(ctx, sub, prev)
	if err != nil {
		return err
	}
	apply, kept, err := r.keepCRDVersions(ctx, objs, true)
	if err != nil {
		return err
	}
	// The failed revision's outcome is written first: if the installer
	// stops now, the next reconcile sees it failed and restores prev.
	failedMsg := fmt.Sprintf("%s %s (revision %d) did not become healthy within %s: %s; rolling back to %s (revision %d)",
		rev.Spec.Package, rev.Spec.Version, rev.Spec.Revision, timeout, cause, prev.Spec.Version, prev.Spec.Revision)
	if err := revs.finish(ctx, rev, v1alpha1.OutcomeRolledBack, failedMsg); err != nil {
		return err
	}
	if err := r.patchStatus(ctx, st); err != nil {
		return err
	}
	rb, err := revs.create(ctx, sub, newRevision{
		target:  revisionTarget{prev.Spec.Catalog, prev.Spec.Bundle, prev.Spec.Version},
		objects: objs, reason: reasonRollback, rollbackOf: prev.Spec.Revision,
	}, func() error { return r.patchStatus(ctx, st) })
	if err != nil {
		return err
	}
	rendered := r.rendered(sub, revisionTarget{prev.Spec.Catalog, prev.Spec.Bundle, prev.Spec.Version}, apply)
	res, applyErr := r.applier().Apply(ctx, rendered, sub.Status.Inventory, adoptionOf(sub))
	if len(res.Inventory) > 0 {
		sub.Status.Inventory = res.Inventory
	}
	msg := fmt.Sprintf("%s %s (revision %d) did not become healthy within %s: %s; restored %s (revision %d) as revision %d",
		rev.Spec.Package, rev.Spec.Version, rev.Spec.Revision, timeout, cause, prev.Spec.Version, prev.Spec.Revision, rb.Spec.Revision)
	if applyErr != nil {
		msg = fmt.Sprintf("%s %s (revision %d) did not become healthy within %s: %s; restoring %s (revision %d) as revision %d failed so far: %v",
			rev.Spec.Package, rev.Spec.Version, rev.Spec.Revision, timeout, cause, prev.Spec.Version, prev.Spec.Revision, rb.Spec.Revision, applyErr)
	}
	if len(kept) > 0 {
		msg += "; " + strings.Join(kept, "; ")
	}
	if deps := r.dependencyNote(ctx, sub); deps != "" {
		msg += "; " + deps
	}
	if err := revs.finish(ctx, rev, v1alpha1.OutcomeRolledBack, msg); err != nil {
		return err
	}
	sub.Status.Inventory = unionInventory(sub.Status.Inventory, inventoryOf(apply))
	st.current = rb
	sub.Status.CurrentRevision = rb.Spec.Revision
	sub.Status.TargetVersion = prev.Spec.Version
	setCondition(sub, v1alpha1.TypeRolledBack, metav1.ConditionTrue, v1alpha1.ReasonHealthGateFailed, msg)
	setCondition(sub, v1alpha1.TypeProgressing, metav1.ConditionTrue, v1alpha1.ReasonWaitingForHealthy, fmt.Sprintf("rolling back to %s (revision %d)", prev.Spec.Version, rb.Spec.Revision))
	sub.Status.State = v1alpha1.StateUpgrading
	r.Recorder.Eventf(sub, nil, corev1.EventTypeWarning, "RolledBack", "Rollback", "%s", msg)
	st.log.Info("upgrade rolled back", "subscription", sub.Name, "failedVersion", rev.Spec.Version, "restoredVersion", prev.Spec.Version, "cause", cause)
	st.requeue = r.healthRequeue()
	return applyErr
}

// dependencyNote says what happened to dependencies in a rollback: each is
// its own Subscription, with its own revisions and health gate.
func (r *Reconciler) dependencyNote(ctx context.Context, sub *v1alpha1.Subscription) string {
	var children v1alpha1.SubscriptionList
	if err := r.Client.List(ctx, &children, client.InNamespace(sub.Namespace), client.MatchingLabels{LabelParent: sub.Name}); err != nil || len(children.Items) == 0 {
		return ""
	}
	var names []string
	for _, c := range children.Items {
		names = append(names, fmt.Sprintf("%s %s", c.Spec.Package, c.Status.InstalledVersion))
	}
	return "dependencies (" + strings.Join(names, ", ") + ") are their own Subscriptions, unchanged by this upgrade, each with its own health gate and rollback"
}

// checkCRDs checks the CRD changes of the wanted objects against the data in
// the cluster before anything is applied.
func (r *Reconciler) checkCRDs(ctx context.Context, st *state) error {
	sub := st.sub
	if r.CRDs == nil || st.want == nil {
		return nil
	}
	policy := sub.Spec.CRDUpgradeSafety
	if policy == "" {
		policy = v1alpha1.CRDSafetyStrict
	}
	if policy == v1alpha1.CRDSafetyNone || (st.want.reason != reasonInstall && st.want.reason != reasonUpgrade) {
		// Only a new version changes installed CRDs (see record).
		return nil
	}
	var findings []string
	blocked := false
	for _, o := range st.want.objects {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		live := &apiextensionsv1.CustomResourceDefinition{}
		err := r.reader().Get(ctx, types.NamespacedName{Name: o.GetName()}, live)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		// Ownership is decided first: a CRD this Subscription may not change
		// is reported as an ownership conflict before anything is recorded
		// (record), never judged as an upgrade of it, and its custom
		// resources are not read.
		if r.applier().Preflight(ctx, r.rendered(sub, st.want.target, []*unstructured.Unstructured{o}), adoptionOf(sub)) != nil {
			continue
		}
		next := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, next); err != nil {
			return fmt.Errorf("CRD %s: %w", o.GetName(), err)
		}
		res, err := r.CRDs.Check(ctx, live, next, policy)
		if err != nil {
			return err
		}
		findings = append(findings, res.Findings...)
		blocked = blocked || res.Blocked
	}
	switch {
	case len(findings) == 0:
		setCondition(sub, v1alpha1.TypeCRDUpgradeSafe, metav1.ConditionTrue, v1alpha1.ReasonCRDSafe, "the CRD changes keep every stored version and every custom resource valid")
	case !blocked:
		setCondition(sub, v1alpha1.TypeCRDUpgradeSafe, metav1.ConditionFalse, v1alpha1.ReasonCRDUnsafe, "proceeding under crdUpgradeSafety: Warn: "+strings.Join(findings, "; "))
	default:
		msg := fmt.Sprintf("%s %s is blocked by crdUpgradeSafety: Strict: %s", sub.Spec.Package, st.want.target.version, strings.Join(findings, "; "))
		setCondition(sub, v1alpha1.TypeCRDUpgradeSafe, metav1.ConditionFalse, v1alpha1.ReasonCRDUnsafe, msg)
		sub.Status.Explanation = msg
		r.Recorder.Eventf(sub, nil, corev1.EventTypeWarning, v1alpha1.ReasonCRDUnsafe, "CheckCRD", "%s", msg)
		// Custom resources are not watched: check again later.
		st.requeue = time.Minute
		if st.current != nil && st.current.Spec.Bundle != st.want.target.bundle {
			return r.keepCurrentBecause(ctx, st, v1alpha1.ReasonCRDUnsafe, msg)
		}
		if sub.Status.InstalledBundle == "" {
			sub.Status.State = v1alpha1.StateFailed
			setCondition(sub, v1alpha1.TypeInstalled, metav1.ConditionFalse, v1alpha1.ReasonCRDUnsafe, msg)
		}
		setCondition(sub, v1alpha1.TypeProgressing, metav1.ConditionFalse, v1alpha1.ReasonCRDUnsafe, msg)
		st.done = true
	}
	return nil
}

// pruneHistory keeps spec.revisionHistoryLimit revisions.
func (r *Reconciler) pruneHistory(ctx context.Context, st *state) error {
	limit := DefaultRevisionHistoryLimit
	if l := st.sub.Spec.RevisionHistoryLimit; l != nil && *l > 0 {
		limit = int(*l)
	}
	if err := r.revisions().prune(ctx, st.sub, limit); err != nil {
		return err
	}
	return r.revisions().forgetDigests(ctx, st.sub, limit)
}

// downgradeTarget returns, for allowDowngrade, the highest version within
// the range when the installed one is outside it: from the catalogs, or
// else from revision history.
func (r *Reconciler) downgradeTarget(ctx context.Context, st *state) (*desired, bool, error) {
	sub := st.sub
	if !sub.Spec.AllowDowngrade || sub.Spec.VersionRange == "" || sub.Status.InstalledVersion == "" {
		return nil, false, nil
	}
	inRange, rerr := catalog.ParseRange(sub.Spec.VersionRange)
	installed, verr := semver.Parse(sub.Status.InstalledVersion)
	if rerr != nil || verr != nil || inRange(installed) {
		// An invalid range is reported by the resolver; nothing to downgrade to.
		return nil, false, nil //nolint:nilerr // not an error of this step
	}
	best, bestCat := highestInChannel(st, func(v semver.Version) bool { return inRange(v) && v.LT(installed) })
	if best != nil {
		rendered, err := r.renderBundle(ctx, st, bestCat, best.Name, best.Version.String())
		if err != nil {
			return nil, false, err
		}
		return &desired{target: revisionTarget{bestCat, best.Name, best.Version.String()}, objects: rendered.Objects, reason: reasonDowngrade}, true, nil
	}
	all, err := r.revisions().list(ctx, sub)
	if err != nil {
		return nil, false, err
	}
	var from *v1alpha1.Revision
	for i := range all {
		v, err := semver.Parse(all[i].Spec.Version)
		if err == nil && inRange(v) && v.LT(installed) && all[i].Status.Outcome == v1alpha1.OutcomeHealthy {
			if from == nil || v.GTE(semver.MustParse(from.Spec.Version)) {
				from = &all[i]
			}
		}
	}
	if from == nil {
		return nil, false, nil
	}
	objs, err := r.revisions().load(ctx, sub, from)
	if err != nil {
		return nil, false, err
	}
	return &desired{target: revisionTarget{from.Spec.Catalog, from.Spec.Bundle, from.Spec.Version}, objects: objs, reason: reasonDowngrade, rollbackOf: from.Spec.Revision}, true, nil
}
