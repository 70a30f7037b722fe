package subscription

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/resolver"
	"github.com/ferrydev/ferry/internal/revision"
)

// AnnotationRetryUpgrade set to the version of status.failedUpgrade lets
// that version be tried again.
const AnnotationRetryUpgrade = "operators.ferry.dev/retry-upgrade"

// Revision reasons, as the controller uses them.
const (
	reasonInstall     = revision.ReasonInstall
	reasonUpgrade     = revision.ReasonUpgrade
	reasonReconfigure = revision.ReasonReconfigure
	reasonRollback    = revision.ReasonRollback
	reasonDowngrade   = revision.ReasonDowngrade
)

// LabelSubscription on a Revision names its Subscription.
const LabelSubscription = revision.LabelSubscription

func (r *Reconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

func (r *Reconciler) revisions() *revision.Store {
	return &revision.Store{Client: r.Client, Reader: r.reader()}
}

// renderBundle fetches a bundle's manifests and renders them for this Subscription.
func (r *Reconciler) renderBundle(ctx context.Context, sub *v1alpha1.Subscription, catalogName, bundle, version string) (*install.Rendered, error) {
	ms, err := r.Catalogs.Manifests(ctx, catalogName, sub.Spec.Package, bundle)
	if err != nil {
		return nil, err
	}
	r.minKube.learn(catalogName, sub.Spec.Package, bundle, ms)
	return renderManifests(sub, bundle, version, ms)
}

// renderTarget renders the resolution's target, with the manifests fetched
// to learn its minimum Kubernetes version when they were, and refuses it
// when that minimum does not fit the cluster (*KubeVersionError): the
// resolver passes such a bundle over once its minimum is known, this is for
// one it could not know.
func (r *Reconciler) renderTarget(ctx context.Context, f *facts, catalogName, bundle, version string) (*install.Rendered, error) {
	var ms []catalog.Manifest
	if p := f.fetched; p != nil && p.catalog == catalogName && p.bundle == bundle {
		if p.err != nil {
			return nil, p.err
		}
		ms = p.manifests
	} else {
		var err error
		if ms, err = r.Catalogs.Manifests(ctx, catalogName, f.sub.Spec.Package, bundle); err != nil {
			return nil, err
		}
		r.minKube.learn(catalogName, f.sub.Spec.Package, bundle, ms)
	}
	if err := checkKubeVersion(bundle, ms, f.kube); err != nil {
		return nil, err
	}
	return renderManifests(f.sub, bundle, version, ms)
}

func renderManifests(sub *v1alpha1.Subscription, bundle, version string, ms []catalog.Manifest) (*install.Rendered, error) {
	return install.Render(install.Input{
		Owner:     types.NamespacedName{Namespace: sub.Namespace, Name: sub.Name},
		Namespace: sub.Namespace, Package: sub.Spec.Package, Version: version, Bundle: bundle,
		Manifests: ms, InstallMode: sub.Spec.InstallMode, TargetNamespaces: sub.Spec.TargetNamespaces, Config: sub.Spec.Config,
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

// consumeRetry removes the retry annotation once it has been honoured.
func (r *Reconciler) consumeRetry(ctx context.Context, sub *v1alpha1.Subscription) error {
	obj := &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: sub.Namespace, Name: sub.Name}}
	patch := []byte(`{"metadata":{"annotations":{"` + AnnotationRetryUpgrade + `":null}}}`)
	if err := r.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return err
	}
	delete(sub.Annotations, AnnotationRetryUpgrade)
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
func (r *Reconciler) rendered(sub *v1alpha1.Subscription, t revision.Target, objs []*unstructured.Unstructured) *install.Rendered {
	return &install.Rendered{
		Objects: objs, Owner: types.NamespacedName{Namespace: sub.Namespace, Name: sub.Name},
		Namespace: sub.Namespace, Package: sub.Spec.Package, Version: t.Version, Bundle: t.Bundle,
	}
}

// checkCRDs checks the CRD changes of a new version against the data in
// the cluster before anything is applied; nil when there is nothing to
// check (no checker, policy None, or not a new version).
func (r *Reconciler) checkCRDs(ctx context.Context, ap *install.Applier, sub *v1alpha1.Subscription, want *content) (*CRDCheck, error) {
	if r.CRDs == nil || ap == nil {
		return nil, nil
	}
	policy := sub.Spec.EffectiveCRDUpgradeSafety()
	if policy == v1alpha1.CRDSafetyNone || (want.reason != reasonInstall && want.reason != reasonUpgrade) {
		// Only a new version changes installed CRDs (see keepCRDVersions).
		return nil, nil
	}
	out := &CRDCheck{}
	for _, o := range want.objects {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		live := &apiextensionsv1.CustomResourceDefinition{}
		err := r.reader().Get(ctx, types.NamespacedName{Name: o.GetName()}, live)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// Ownership is decided first: a CRD this Subscription may not change
		// is reported as an ownership conflict before anything is recorded,
		// never judged as an upgrade of it, and its custom resources are not
		// read.
		if ap.Preflight(ctx, r.rendered(sub, want.target, []*unstructured.Unstructured{o}), adoptionOf(sub)) != nil {
			continue
		}
		next := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, next); err != nil {
			return nil, fmt.Errorf("CRD %s: %w", o.GetName(), err)
		}
		res, err := r.CRDs.Check(ctx, live, next, policy)
		if err != nil {
			return nil, err
		}
		out.Findings = append(out.Findings, res.Findings...)
		out.Blocked = out.Blocked || res.Blocked
	}
	return out, nil
}

// objectsOf is the content's objects, loaded from its revision when they
// were not rendered.
func (r *Reconciler) objectsOf(ctx context.Context, sub *v1alpha1.Subscription, w *content) ([]*unstructured.Unstructured, error) {
	if w.objects != nil {
		return w.objects, nil
	}
	return r.revisions().Load(ctx, sub, w.from)
}

// adoptionOf is the Subscription's adoption policy as an Apply option.
func adoptionOf(sub *v1alpha1.Subscription) install.ApplyOption {
	return install.WithAdoption(sub.Spec.EffectiveAdoptionPolicy())
}

// healthTimeout is how long a revision may take to become healthy.
func healthTimeout(sub *v1alpha1.Subscription) time.Duration {
	return sub.Spec.EffectiveHealthTimeout()
}

// childFor builds the child Subscription for a dependency: same namespace,
// the dependency's catalog and channel, its version to start with, and the
// range the parent's target requires.
func childFor(parent *v1alpha1.Subscription, snaps []resolver.Snapshot, target *resolver.Target, dep resolver.Dependency) *v1alpha1.Subscription {
	channel := ""
	for _, s := range snaps {
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
	for _, s := range snaps {
		if s.Name != target.Catalog {
			continue
		}
		if b := s.Catalog.Bundle(target.Package, target.Bundle); b != nil {
			for _, req := range b.RequiredPackages {
				if req.PackageName == dep.Package {
					versionRange = req.VersionRange
				}
			}
		}
	}
	return &v1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{
			Name:        dep.Package,
			Namespace:   parent.Namespace,
			Labels:      map[string]string{LabelParent: parent.Name},
			Annotations: map[string]string{AnnotationRequiredBy: dep.RequiredBy},
		},
		Spec: v1alpha1.SubscriptionSpec{
			Catalog: dep.Catalog, Package: dep.Package, Channel: channel, VersionRange: versionRange,
			StartingVersion: dep.Version.String(), Approval: parent.Spec.Approval,
			InstallMode: parent.Spec.InstallMode, TargetNamespaces: slices.Clone(parent.Spec.TargetNamespaces),
		},
	}
}

// ownershipConflict is the result for err when it is about objects Ferry
// may not change; ok is false for any other error. The objects are left as
// they are.
//
// It also reports permissions the Subscription's ServiceAccount lacks
// (permissionsMissing): nothing was changed either.
func (r *Reconciler) ownershipConflict(x *exec, version string, err error) (result, bool) {
	if res, ok := r.permissionsMissing(x, version, err); ok {
		return res, true
	}
	var conflict *install.OwnershipConflictError
	if !errors.As(err, &conflict) {
		return result{}, false
	}
	sub := x.sub
	msg := fmt.Sprintf("%s %s cannot be installed, nothing was applied: %v", sub.Spec.Package, version, err)
	res := result{phase: phaseFailed, progressing: &note{false, v1alpha1.ReasonOwnershipConflict, msg}, explanation: &msg, requeue: catalogRequeue}
	if sub.Status.InstalledVersion == "" {
		res.installed = &note{false, v1alpha1.ReasonOwnershipConflict, msg}
	}
	r.Recorder.Eventf(sub, nil, corev1.EventTypeWarning, v1alpha1.ReasonOwnershipConflict, "Apply", "%s", msg)
	x.log.Info("ownership conflict", "subscription", sub.Name, "package", sub.Spec.Package, "version", version, "error", err.Error())
	// Objects of other owners are not watched: look again later.
	return res, true
}

// applyObjects applies a revision's objects (apply: less the installed
// CRDs kept as they are) with server-side apply. A revision that cannot
// even be applied by the end of its health timeout fails its gate.
func (r *Reconciler) applyObjects(ctx context.Context, x *exec, f *facts, rev *v1alpha1.Revision, t revision.Target, apply []*unstructured.Unstructured) (result, bool) {
	sub := x.sub
	start := time.Now()
	res, err := x.ap.Apply(ctx, r.rendered(sub, t, apply), sub.Status.Inventory, adoptionOf(sub))
	since(applySeconds, start)
	if len(res.Inventory) > 0 {
		sub.Status.Inventory = res.Inventory
	}
	if err == nil {
		sub.Status.TargetVersion = t.Version
		if rev != nil {
			r.applied.record(sub, x.heard, rev, time.Now())
		}
		return result{}, true
	}
	if out, ok := r.ownershipConflict(x, t.Version, err); ok {
		return out, false
	}
	msg := fmt.Sprintf("applying %s %s: %v", sub.Spec.Package, t.Version, err)
	out := result{phase: phaseProgressing, rev: rev, progressing: &note{true, v1alpha1.ReasonApplyFailed, msg}, err: err}
	if rev != nil && rev == f.current && f.applyFailed == nil && rev.Status.Outcome == v1alpha1.OutcomeProgressing && pastGate(f.now, rev, healthTimeout(sub)) {
		// The current revision cannot even be applied by the end of its
		// timeout: decide judges it (Reconciler.run).
		out.applyFailed = err
	}
	return out, false
}

// rollbackTarget is the revision a failed rev rolls back to, or nil when
// it may not roll back (an install, a rollback itself, policy Never).
func rollbackTarget(f *facts, rev *v1alpha1.Revision) *v1alpha1.Revision {
	if rev.Spec.Reason == reasonRollback || rev.Spec.Reason == reasonInstall || f.sub.Spec.EffectiveRollbackPolicy() == v1alpha1.RollbackNever {
		return nil
	}
	return lastHealthy(f.revisions, rev.Spec.Revision)
}

// pruneHistory keeps spec.revisionHistoryLimit revisions.
func (r *Reconciler) pruneHistory(ctx context.Context, sub *v1alpha1.Subscription) error {
	limit := sub.Spec.EffectiveRevisionHistoryLimit()
	if err := r.revisions().Prune(ctx, sub, limit); err != nil {
		return err
	}
	return r.revisions().ForgetDigests(ctx, sub, limit)
}
