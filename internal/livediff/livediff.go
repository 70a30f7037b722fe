package livediff

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
)

// Actions of an object in a diff.
const (
	ActionCreate    = "create"
	ActionChange    = "change"
	ActionUnchanged = "unchanged"
	ActionDelete    = "delete"
	ActionKeep      = "keep"
	ActionReplace   = "replace"
	ActionConflict  = "conflict"
	ActionError     = "error"
)

// noise are the metadata fields every write changes; they are left out of
// every comparison.
var noise = []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"}

// ObjectDiff is one object of the diff.
type ObjectDiff struct {
	// Object is e.g. "Deployment ns/name" or "CRD beacons.example.com".
	Object string `json:"object"`
	// Action is create, change, unchanged, replace (a Deployment whose
	// selector changed is deleted and created), delete, keep (a CRD no
	// longer shipped is kept), conflict (the object is not Ferry's for this
	// Subscription: the installer would stop) or error (the dry run failed).
	Action string `json:"action"`
	// Diff is the unified diff of the live object and the dry run's result
	// (managedFields, resourceVersion, generation, uid and creationTimestamp
	// left out).
	Diff string `json:"diff,omitempty"`
	// Message says why, for conflict, error, replace, delete and keep.
	Message string `json:"message,omitempty"`
	// Fields are the changed fields of a changed object, one
	// "path: old -> new" each, in path order.
	Fields []string `json:"-"`
	// Err is the API server's answer when the dry run failed (error).
	Err error `json:"-"`
}

// CRD is a CRD of the target that exists live, for a safety check.
type CRD struct {
	// Live is the CRD in the cluster.
	Live *unstructured.Unstructured
	// Target is the CRD the target ships.
	Target *unstructured.Unstructured
}

// Input is what Compare compares.
type Input struct {
	// Objects are the rendered objects of the target in apply order. They
	// are stamped (labels and owner annotation) as the installer does;
	// the caller's objects are not modified.
	Objects []*unstructured.Unstructured
	// Inventory is what the installed version applied.
	Inventory []v1alpha1.ObjectReference
	// Owner is the Subscription.
	Owner types.NamespacedName
	// Package is the Subscription's package.
	Package string
}

// Result is what Compare found.
type Result struct {
	// Objects are the target's objects in apply order, then the objects of
	// the installed version the target no longer ships.
	Objects []ObjectDiff
	// CRDs are the target's CRDs that exist live, in apply order.
	CRDs []CRD
	// RBAC is what the operator's service accounts gain and lose.
	RBAC RBACDelta
}

// Compare dry-runs every object of in with w and compares the results with
// the live objects r reads. Give w the identity the install would write
// with, so that the dry run is authorized as the install would be. A dry run refused or failed
// is part of the result (ActionError); only errors reading live objects are
// returned, wrapped in a *ReadError.
func Compare(ctx context.Context, r client.Reader, w client.Writer, in Input) (*Result, error) {
	res := &Result{}
	var liveRoles, newRoles []*unstructured.Unstructured
	want := map[string]bool{}
	// What the installer generates when it applies (webhook certificates,
	// the CA bundles and hashes that follow them) is compared as it would
	// be written: the live certificate while the installer would keep it.
	objs, regenerate, err := install.LiveCertificates(ctx, r, in.Objects, time.Now())
	if err != nil {
		return nil, err
	}
	for _, src := range objs {
		o := src.DeepCopy()
		ref := install.Ref(o)
		want[RefKey(ref)] = true
		install.StampOwner(o, in.Owner, in.Package)
		if slices.Contains(regenerate, ref) {
			d, err := generatedCertificate(ctx, r, ref)
			if err != nil {
				return nil, err
			}
			res.Objects = append(res.Objects, d)
			continue
		}
		d, live, err := DryRun(ctx, r, w, o, in.Owner, in.Package)
		if err != nil {
			return nil, err
		}
		if o.GetAnnotations()[install.AnnotationServingCertFor] != "" {
			// Never show a private key.
			d.Diff = ""
			d.Fields = slices.DeleteFunc(d.Fields, func(f string) bool { return strings.HasPrefix(f, "data") })
		}
		res.Objects = append(res.Objects, d)
		if IsRole(ref) {
			newRoles = append(newRoles, o)
		}
		if live != nil && IsCRD(ref) {
			res.CRDs = append(res.CRDs, CRD{Live: live, Target: o})
		}
	}
	for _, ref := range in.Inventory {
		if want[RefKey(ref)] {
			if IsRole(ref) {
				if live, err := Live(ctx, r, ref); err == nil && live != nil {
					liveRoles = append(liveRoles, live)
				}
			}
			continue
		}
		d := ObjectDiff{Object: Describe(ref)}
		live, err := Live(ctx, r, ref)
		switch {
		case err != nil:
			d.Action, d.Message = ActionError, err.Error()
		case live == nil:
			continue
		case IsCRD(ref):
			d.Action, d.Message = ActionKeep, "no longer shipped; CRDs are never deleted by an upgrade"
		case !install.IsOwner(live, in.Owner):
			continue
		default:
			d.Action, d.Message = ActionDelete, "no longer shipped"
			if IsRole(ref) {
				liveRoles = append(liveRoles, live)
			}
		}
		res.Objects = append(res.Objects, d)
	}
	if res.RBAC, err = RBAC(liveRoles, newRoles); err != nil {
		return nil, err
	}
	return res, nil
}

// generatedCertificate is the diff of a webhook certificate Secret the
// installer creates or replaces when it applies: no dry run (there is no
// key before the apply), and no content shown.
func generatedCertificate(ctx context.Context, r client.Reader, ref v1alpha1.ObjectReference) (ObjectDiff, error) {
	d := ObjectDiff{Object: Describe(ref), Action: ActionCreate, Message: "webhook serving certificate: generated when applied"}
	live, err := Live(ctx, r, ref)
	if err != nil {
		return d, err
	}
	if live != nil {
		d.Action, d.Message = ActionChange, "webhook serving certificate: missing, invalid or due for rotation, replaced when applied"
	}
	return d, nil
}

// ReadError is a failure to read a live object.
type ReadError struct {
	// Object names the object, as Describe does.
	Object string
	// Err is the API server's answer.
	Err error
}

func (e *ReadError) Error() string { return "reading " + e.Object + ": " + e.Err.Error() }

func (e *ReadError) Unwrap() error { return e.Err }

// Live reads an object; nil when it does not exist.
func Live(ctx context.Context, c client.Reader, ref v1alpha1.ObjectReference) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(APIVersion(ref))
	u.SetKind(ref.Kind)
	err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, u)
	switch {
	case apierrors.IsNotFound(err), meta.IsNoMatchError(err):
		return nil, nil
	case err != nil:
		return nil, &ReadError{Object: Describe(ref), Err: err}
	}
	return u, nil
}

// DryRun applies o with dryRun=All through w and compares the result with
// the live object r reads, which it returns. Failures of the dry run itself are part of the
// diff; only errors reading the live object or encoding the objects are
// returned.
func DryRun(ctx context.Context, r client.Reader, w client.Writer, o *unstructured.Unstructured, owner types.NamespacedName, pkg string) (ObjectDiff, *unstructured.Unstructured, error) {
	ref := install.Ref(o)
	d := ObjectDiff{Object: Describe(ref)}
	live, err := Live(ctx, r, ref)
	if err != nil {
		return d, nil, err
	}
	if live != nil && !mayChange(live, ref, owner, pkg) {
		d.Action = ActionConflict
		d.Message = fmt.Sprintf("exists and was not installed by Ferry for %s (%s): the installer would stop before applying anything", owner, v1alpha1.ReasonOwnershipConflict)
		if m := managers(live); m != "" {
			d.Message += "; managed by " + m
		}
		return d, live, nil
	}
	res := o.DeepCopy()
	err = w.Apply(ctx, client.ApplyConfigurationFromUnstructured(res), client.FieldOwner(install.FieldManager), client.ForceOwnership, client.DryRunAll)
	if err != nil {
		if live != nil && ref.Kind == "Deployment" && apierrors.IsInvalid(err) && strings.Contains(err.Error(), "spec.selector") {
			d.Action, d.Message = ActionReplace, "its selector changed, which cannot be changed in place: the installer deletes and creates it"
			return d, live, nil
		}
		d.Action, d.Message, d.Err = ActionError, "the dry run failed: "+err.Error(), err
		return d, live, nil
	}
	var before []byte
	if live != nil {
		if before, err = Normalized(live); err != nil {
			return d, nil, err
		}
	}
	after, err := Normalized(res)
	if err != nil {
		return d, nil, err
	}
	switch {
	case live == nil:
		d.Action = ActionCreate
		if IsCRD(ref) {
			d.Message = "new CRD"
			return d, nil, nil
		}
	case string(before) == string(after):
		d.Action = ActionUnchanged
		return d, live, nil
	default:
		d.Action = ActionChange
		d.Fields = FieldChanges(live.Object, res.Object)
	}
	var a []string
	if live != nil {
		a = difflib.SplitLines(strings.TrimSuffix(string(before), "\n"))
	}
	d.Diff, err = difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: a, B: difflib.SplitLines(strings.TrimSuffix(string(after), "\n")),
		FromFile: "live", ToFile: "dry-run", Context: 3,
	})
	if err != nil {
		return d, nil, err
	}
	return d, live, nil
}

// mayChange reports whether the installer may change the live object for
// owner: it installed it for owner, or it is a CRD of the same package.
func mayChange(live *unstructured.Unstructured, ref v1alpha1.ObjectReference, owner types.NamespacedName, pkg string) bool {
	if install.IsOwner(live, owner) {
		return true
	}
	l := live.GetLabels()
	return IsCRD(ref) && l[install.LabelManagedBy] == install.ManagedByValue && l[install.LabelPackage] == install.LabelValue(pkg)
}

// managers lists the field managers of an object.
func managers(u *unstructured.Unstructured) string {
	var out []string
	for _, m := range u.GetManagedFields() {
		if !slices.Contains(out, m.Manager) {
			out = append(out, m.Manager)
		}
	}
	return strings.Join(out, ", ")
}

// Normalized is an object as YAML without what every write changes.
func Normalized(u *unstructured.Unstructured) ([]byte, error) {
	c := u.DeepCopy()
	for _, f := range noise {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	return yaml.Marshal(c.Object)
}

// RefKey identifies an object across versions.
func RefKey(r v1alpha1.ObjectReference) string {
	return r.Group + "|" + r.Kind + "|" + r.Namespace + "|" + r.Name
}

// APIVersion is the apiVersion of a reference.
func APIVersion(r v1alpha1.ObjectReference) string {
	if r.Group == "" {
		return r.Version
	}
	return r.Group + "/" + r.Version
}

// IsCRD reports whether r is a CustomResourceDefinition.
func IsCRD(r v1alpha1.ObjectReference) bool {
	return r.Group == "apiextensions.k8s.io" && r.Kind == "CustomResourceDefinition"
}

// IsRole reports whether r is a Role or ClusterRole.
func IsRole(r v1alpha1.ObjectReference) bool {
	return r.Group == "rbac.authorization.k8s.io" && (r.Kind == "Role" || r.Kind == "ClusterRole")
}

// Describe names an object as the installer's messages do.
func Describe(r v1alpha1.ObjectReference) string {
	kind := r.Kind
	if IsCRD(r) {
		kind = "CRD"
	}
	if r.Namespace == "" {
		return kind + " " + r.Name
	}
	return kind + " " + r.Namespace + "/" + r.Name
}
