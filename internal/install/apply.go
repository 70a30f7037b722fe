package install

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// DefaultCRDEstablishTimeout bounds the wait for applied CRDs to become
// Established when Applier.CRDEstablishTimeout is zero.
const DefaultCRDEstablishTimeout = 30 * time.Second

// Applier applies rendered objects to a cluster, checks their health and
// removes them.
type Applier struct {
	// Client talks to the cluster. Its scheme needs no types beyond the
	// built-in ones: objects are read as unstructured or metadata.
	Client client.Client
	// Writer makes every write: server-side apply and delete. Client when
	// nil. Give it a client acting as the Subscription's ServiceAccount so
	// that Kubernetes' authorization bounds what is installed; reads
	// (ownership, drift, health) stay with Client and Reader.
	Writer client.Writer
	// Authorize, when set, decides before any change whether every write
	// of an Apply or Uninstall may be made (see Authorizer).
	Authorize Authorizer
	// Reader reads who owns an object, straight from the API server;
	// Client when nil. It must not be a cache that selects by label: an
	// object Ferry did not label would look absent and be taken over.
	Reader client.Reader
	// FieldManager is the server-side apply field manager; FieldManager
	// ("ferry") when empty.
	FieldManager string
	// CRDEstablishTimeout bounds the wait for CRDs to become Established;
	// DefaultCRDEstablishTimeout when zero.
	CRDEstablishTimeout time.Duration
	// Clock tells the time webhook certificates are checked and generated
	// at; time.Now when nil.
	Clock func() time.Time
}

// Authorizer decides, before anything is changed, whether the writes of a
// plan may be made: apply are the objects written with server-side apply,
// remove the objects deleted. Its error stops Apply or Uninstall before any
// change and is returned as it is.
type Authorizer func(ctx context.Context, apply []*unstructured.Unstructured, remove []v1alpha1.ObjectReference) error

// ApplyResult is what Apply did.
type ApplyResult struct {
	// Inventory is every object the owner now has installed; store it and
	// pass it as previous to the next Apply and to Health and Uninstall.
	// When Apply fails it still lists every object that may exist, the
	// previous ones included, so nothing is forgotten.
	Inventory []v1alpha1.ObjectReference
	// Pruned lists the objects deleted because the new version does not
	// ship them any more.
	Pruned []v1alpha1.ObjectReference
	// Deferred lists the webhook configurations and CRDs with a conversion
	// webhook that were not registered because the Deployment serving them
	// is not available yet; a later Apply registers them (Health reports
	// them pending meanwhile).
	Deferred []v1alpha1.ObjectReference
	// CertificatesRotateAt is when the earliest webhook serving certificate
	// applied is due for rotation: apply again by then. Zero when there is
	// none.
	CertificatesRotateAt time.Time
}

func (a *Applier) fieldManager() string {
	if a.FieldManager == "" {
		return FieldManager
	}
	return a.FieldManager
}

// Apply server-side applies every object of r with force ownership: CRDs
// first, waiting until they are Established, then the rest in order. It
// recreates deleted objects and resets edited fields that Ferry manages.
// Then it deletes the objects of previous that r no longer has, except CRDs,
// which Apply never deletes (they stay in the inventory), and except objects
// Ferry did not install for r's owner.
//
// Before anything is applied, Preflight reads every object: one that exists
// and may not be changed for r's owner (another Subscription's, a CRD of
// another package, or one Ferry did not create, unless WithAdoption allows
// it) stops Apply with one *OwnershipConflictError per object, and nothing
// is applied. Every applied object carries r's owner labels and
// AnnotationOwner, whatever r's content says. On error nothing is pruned.
func (a *Applier) Apply(ctx context.Context, r *Rendered, previous []v1alpha1.ObjectReference, opts ...ApplyOption) (ApplyResult, error) {
	if r == nil {
		return ApplyResult{Inventory: previous}, errors.New("install: nothing rendered to apply")
	}
	if err := a.Preflight(ctx, r, opts...); err != nil {
		return ApplyResult{Inventory: previous}, err
	}
	if err := a.Authorized(ctx, r, previous); err != nil {
		return ApplyResult{Inventory: previous}, err
	}
	inv := r.Inventory()
	want := map[string]bool{}
	for _, ref := range inv {
		want[objectKey(ref)] = true
	}
	// The inventory to report on failure: everything that may exist.
	union := append([]v1alpha1.ObjectReference{}, inv...)
	for _, ref := range previous {
		if !want[objectKey(ref)] {
			union = append(union, ref)
		}
	}

	var crds []*unstructured.Unstructured
	for _, o := range r.Objects {
		if isCRD(Ref(o)) {
			crds = append(crds, o)
		}
	}
	g := &generated{certs: map[string]*servingCert{}}
	for _, o := range crds {
		o, err := a.fill(ctx, o, g)
		if err != nil {
			return ApplyResult{Inventory: union}, err
		}
		if err := a.applyOne(ctx, r, o); err != nil {
			return ApplyResult{Inventory: union}, err
		}
	}
	if err := a.waitEstablished(ctx, crds); err != nil {
		return ApplyResult{Inventory: union}, err
	}
	var errs []error
	for _, o := range r.Objects {
		if isCRD(Ref(o)) || isWebhookStep(o) {
			continue
		}
		o, err := a.fill(ctx, o, g)
		if err == nil {
			err = a.applyOne(ctx, r, o)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return ApplyResult{Inventory: union}, errors.Join(errs...)
	}
	// Webhooks last, each once the Deployment serving it is available.
	if err := a.registerWebhooks(ctx, r, g); err != nil {
		return ApplyResult{Inventory: union}, err
	}

	res := ApplyResult{Inventory: inv, Deferred: g.deferred, CertificatesRotateAt: g.rotateAt}
	// Deleted in reverse apply order (a webhook configuration before the
	// Service it calls, a Deployment before its RBAC), reported in the
	// order of previous.
	stale := slices.Clone(previous)
	sort.SliceStable(stale, func(i, j int) bool { return rankOfRef(stale[i]) > rankOfRef(stale[j]) })
	pruned, failed := map[string]bool{}, map[string]bool{}
	for _, ref := range stale {
		if want[objectKey(ref)] || isCRD(ref) {
			continue
		}
		deleted, err := a.deleteOwned(ctx, func(o metav1.Object) bool { return IsOwner(o, r.Owner) }, ref)
		if err != nil {
			failed[objectKey(ref)] = true
			errs = append(errs, fmt.Errorf("pruning %s: %w", describe(ref), err))
			continue
		}
		pruned[objectKey(ref)] = deleted
	}
	for _, ref := range previous {
		switch key := objectKey(ref); {
		case want[key]:
		case isCRD(ref) || failed[key]:
			res.Inventory = append(res.Inventory, ref)
		case pruned[key]:
			res.Pruned = append(res.Pruned, ref)
		}
	}
	return res, errors.Join(errs...)
}

// Authorized asks Authorize whether Apply(r, previous) may make its writes:
// every object of r, and every object of previous that r no longer has
// except CRDs (the ones Apply may prune). nil when no Authorize is set.
func (a *Applier) Authorized(ctx context.Context, r *Rendered, previous []v1alpha1.ObjectReference) error {
	if a.Authorize == nil || r == nil {
		return nil
	}
	want := map[string]bool{}
	for _, o := range r.Objects {
		want[objectKey(Ref(o))] = true
	}
	var remove []v1alpha1.ObjectReference
	for _, ref := range previous {
		if !want[objectKey(ref)] && !isCRD(ref) {
			remove = append(remove, ref)
		}
	}
	return a.Authorize(ctx, r.Objects, remove)
}

func (a *Applier) applyOne(ctx context.Context, r *Rendered, in *unstructured.Unstructured) error {
	owner := r.Owner
	o := in.DeepCopy()
	StampOwner(o, owner, r.Package)
	ref := Ref(o)
	err := a.writer().Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), client.FieldOwner(a.fieldManager()), client.ForceOwnership)
	if err != nil && ref.Group == "apps" && ref.Kind == "Deployment" && apierrors.IsInvalid(err) && strings.Contains(err.Error(), "spec.selector") {
		// A new version changed the immutable selector: replace the
		// Deployment, as OLM does.
		if _, derr := a.deleteOwned(ctx, func(cur metav1.Object) bool { return IsOwner(cur, owner) }, ref); derr != nil {
			return fmt.Errorf("replacing %s after its selector changed: %w", describe(ref), derr)
		}
		if werr := a.waitGone(ctx, ref); werr != nil {
			return fmt.Errorf("replacing %s after its selector changed: %w", describe(ref), werr)
		}
		err = a.writer().Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), client.FieldOwner(a.fieldManager()), client.ForceOwnership)
	}
	if err != nil {
		return fmt.Errorf("applying %s: %w", describe(ref), err)
	}
	return nil
}

// waitGone waits, bounded by CRDEstablishTimeout, until the object is gone.
func (a *Applier) waitGone(ctx context.Context, ref v1alpha1.ObjectReference) error {
	timeout := a.CRDEstablishTimeout
	if timeout <= 0 {
		timeout = DefaultCRDEstablishTimeout
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := a.getMeta(ctx, ref)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// writer makes the writes: Writer, or Client when nil.
func (a *Applier) writer() client.Writer {
	if a.Writer != nil {
		return a.Writer
	}
	return a.Client
}

// reader is where ownership is read: Reader, or Client when nil.
func (a *Applier) reader() client.Reader {
	if a.Reader != nil {
		return a.Reader
	}
	return a.Client
}

// getMeta reads an object's metadata from the API server (see Reader).
func (a *Applier) getMeta(ctx context.Context, ref v1alpha1.ObjectReference) (*metav1.PartialObjectMetadata, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvkOf(ref))
	err := a.reader().Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, m)
	return m, err
}

// deleteOwned deletes the object when it exists and owns accepts it, read
// from the API server. It reports whether it deleted it (or it was already
// being deleted). The delete is conditional on the UID read, so an object
// replaced since is left alone.
func (a *Applier) deleteOwned(ctx context.Context, owns func(metav1.Object) bool, ref v1alpha1.ObjectReference) (bool, error) {
	if ref.Kind == "Namespace" && ref.Group == "" {
		return false, nil
	}
	cur, err := a.getMeta(ctx, ref)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		// Gone, or its kind is no longer served (its CRD is gone).
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !owns(cur) {
		return false, nil
	}
	if cur.GetDeletionTimestamp() != nil {
		return true, nil
	}
	uid := cur.GetUID()
	err = a.writer().Delete(ctx, cur, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &uid})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if apierrors.IsConflict(err) {
		// Replaced by another object of the same name since the read.
		return false, nil
	}
	return err == nil, err
}

func (a *Applier) waitEstablished(ctx context.Context, crds []*unstructured.Unstructured) error {
	if len(crds) == 0 {
		return nil
	}
	timeout := a.CRDEstablishTimeout
	if timeout <= 0 {
		timeout = DefaultCRDEstablishTimeout
	}
	var pending string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, o := range crds {
			ok, msg, err := a.crdEstablished(ctx, o.GetName())
			if err != nil {
				return false, err
			}
			if !ok {
				pending = msg
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		if pending != "" {
			return fmt.Errorf("waiting for CRDs to be established: %s: %w", pending, err)
		}
		return fmt.Errorf("waiting for CRDs to be established: %w", err)
	}
	return nil
}

var crdGVK = schema.GroupVersionKind{Group: groupAPIExtensions, Version: "v1", Kind: kindCRD}

// crdEstablished reads a CRD's Established and NamesAccepted conditions.
func (a *Applier) crdEstablished(ctx context.Context, name string) (ok bool, msg string, err error) {
	ok, msg, _, err = a.readCRD(ctx, name)
	return ok, msg, err
}

// readCRD is crdEstablished, and the CRD read (nil when it is not found).
func (a *Applier) readCRD(ctx context.Context, name string) (ok bool, msg string, crd *unstructured.Unstructured, err error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(crdGVK)
	if err := a.Client.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return false, "CRD " + name + ": not found", nil, nil
		}
		return false, "", nil, fmt.Errorf("reading CRD %s: %w", name, err)
	}
	conds := conditions(u)
	if c, found := conds["NamesAccepted"]; found && c.status == "False" {
		return false, fmt.Sprintf("CRD %s: names not accepted: %s", name, c.message), u, nil
	}
	if c := conds["Established"]; c.status != "True" {
		if c.message != "" {
			return false, fmt.Sprintf("CRD %s: not established: %s", name, c.message), u, nil
		}
		return false, "CRD " + name + ": not established", u, nil
	}
	return true, "", u, nil
}

type condition struct{ status, reason, message string }

func conditions(u *unstructured.Unstructured) map[string]condition {
	out := map[string]condition{}
	list, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range list {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		t, _ := m["type"].(string)
		s, _ := m["status"].(string)
		r, _ := m["reason"].(string)
		msg, _ := m["message"].(string)
		out[t] = condition{status: s, reason: r, message: msg}
	}
	return out
}

func isCRD(ref v1alpha1.ObjectReference) bool {
	return ref.Group == groupAPIExtensions && ref.Kind == kindCRD
}

func gvkOf(ref v1alpha1.ObjectReference) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: ref.Group, Version: ref.Version, Kind: ref.Kind}
}
