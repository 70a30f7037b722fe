package subscription

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/tenancy"
)

// The installer reads whether a Subscription's namespace is being deleted.
//
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get

// Tenancy makes every write of a Subscription as its ServiceAccount
// (internal/tenancy): the operator's objects, CRDs and RBAC, dependency
// Subscriptions, and the deletes of upgrades and uninstalls. Reads stay
// with the installer's identity. Revisions and their blobs are written by
// the installer itself.
type Tenancy struct {
	// Policy resolves the ServiceAccount of a Subscription.
	Policy tenancy.Policy
	// Clients make the ServiceAccount's writes.
	Clients *tenancy.Clients
	// Checker asks the API server, before any change, whether the
	// ServiceAccount may make every write.
	Checker *tenancy.Checker
}

// tenantApplier returns base acting for sub: every write made as its
// ServiceAccount, every Apply and Uninstall checked before any change. A
// *CannotActError says why it cannot.
func (r *Reconciler) tenantApplier(ctx context.Context, sub *v1alpha1.Subscription, base *install.Applier) (*install.Applier, error) {
	t := r.Tenancy
	if t == nil || t.Clients == nil || t.Checker == nil {
		return nil, &CannotActError{Reason: v1alpha1.ReasonNoServiceAccount, Err: errors.New("the installer is not set up to act as ServiceAccounts; nothing is installed")}
	}
	id, err := t.Policy.IdentityFor(sub)
	if err != nil {
		return nil, &CannotActError{Reason: v1alpha1.ReasonNoServiceAccount, Err: err}
	}
	if sub.DeletionTimestamp.IsZero() {
		// Nothing is installed into a namespace being deleted: its objects,
		// and the ServiceAccount's rights, are going.
		terminating, err := r.namespaceTerminating(ctx, sub.Namespace)
		if err != nil {
			return nil, err
		}
		if terminating {
			return nil, &CannotActError{Reason: v1alpha1.ReasonDeleting, Err: fmt.Errorf("namespace %s is being deleted; nothing is installed into it", sub.Namespace)}
		}
		// Nor into a target namespace that is gone or going: the
		// ServiceAccount's rights there go with it.
		for _, target := range sub.Spec.TargetNamespaces {
			if target == sub.Namespace {
				continue
			}
			terminating, err := r.namespaceTerminating(ctx, target)
			if err != nil {
				return nil, err
			}
			if terminating {
				return nil, &CannotActError{Reason: v1alpha1.ReasonCannotAct, Err: fmt.Errorf(
					"target namespace %s (spec.targetNamespaces) does not exist or is being deleted; nothing is installed until it exists or the spec no longer names it", target)}
			}
		}
		// An uninstall goes on with the rights the ServiceAccount's name
		// still has; an install waits for the ServiceAccount.
		sa := &metav1.PartialObjectMetadata{}
		sa.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ServiceAccount"))
		err = r.reader().Get(ctx, ctrl.ObjectKey{Namespace: id.Namespace, Name: id.Name}, sa)
		if apierrors.IsNotFound(err) {
			return nil, &CannotActError{Reason: v1alpha1.ReasonNoServiceAccount, Err: fmt.Errorf(
				"%s does not exist; the Subscription is installed with its rights (spec.serviceAccountName, or the installer's default): create it and grant it what the operator needs (examples/tenancy)", id)}
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", id, err)
		}
	}
	w, err := t.Clients.For(id)
	if err != nil {
		return nil, err
	}
	a := *base
	a.Writer = w
	a.Authorize = func(ctx context.Context, apply []*unstructured.Unstructured, remove []v1alpha1.ObjectReference) error {
		return t.Checker.Check(ctx, id, tenancy.Plan{Apply: apply, Delete: remove})
	}
	return &a, nil
}

// permissionsMissing is the result for err when the Subscription's
// ServiceAccount lacks permissions for a change; ok is false for any other
// error. Nothing was changed.
func (r *Reconciler) permissionsMissing(x *exec, version string, err error) (result, bool) {
	var pm *tenancy.PermissionsMissingError
	if !errors.As(err, &pm) {
		return result{}, false
	}
	sub := x.sub
	msg := fmt.Sprintf("%s %s cannot be installed, nothing was changed: %v", sub.Spec.Package, version, pm)
	res := result{phase: phaseFailed, progressing: &note{false, v1alpha1.ReasonPermissionsMissing, msg}, explanation: &msg, requeue: catalogRequeue}
	if sub.Status.InstalledVersion == "" {
		res.installed = &note{false, v1alpha1.ReasonPermissionsMissing, msg}
	}
	r.Recorder.Eventf(sub, nil, corev1.EventTypeWarning, v1alpha1.ReasonPermissionsMissing, "Apply", "%s", msg)
	x.log.Info("permissions missing", "subscription", sub.Name, "package", sub.Spec.Package, "version", version,
		"serviceAccount", pm.Identity.Namespace+"/"+pm.Identity.Name, "missing", len(pm.Missing))
	// RBAC is not watched: look again later.
	return res, true
}

// writer makes the Subscription's own writes (dependency Subscriptions):
// as its ServiceAccount.
func (x *exec) writer() (ctrl.Writer, error) {
	if x.ap == nil || x.ap.Writer == nil {
		return nil, errors.New("no writer for the Subscription's ServiceAccount")
	}
	return x.ap.Writer, nil
}

// namespaceTerminating reports whether namespace ns is being deleted.
func (r *Reconciler) namespaceTerminating(ctx context.Context, ns string) (bool, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	err := r.reader().Get(ctx, ctrl.ObjectKey{Name: ns}, m)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	return !m.DeletionTimestamp.IsZero(), nil
}

// maxRefusal bounds status.availableUpgrade.refusal (the CRD's maxLength).
const maxRefusal = 4096

// upgradeRefusal says why ap's ServiceAccount could not apply an upgrade to
// rendered, or "" when it could: what a Manual Subscription's pending
// upgrade would meet once approved. Only a refusal for permissions is
// reported; another error of the check is returned.
func upgradeRefusal(ctx context.Context, ap *install.Applier, rendered *install.Rendered, inventory []v1alpha1.ObjectReference) (string, error) {
	if ap == nil {
		return "", nil
	}
	err := ap.Authorized(ctx, rendered, inventory)
	var pm *tenancy.PermissionsMissingError
	switch {
	case err == nil:
		return "", nil
	case errors.As(err, &pm):
		msg := "if approved now, the upgrade would be refused, nothing changed: " + pm.Error()
		if len(msg) > maxRefusal {
			msg = msg[:maxRefusal-3] + "..."
		}
		return msg, nil
	}
	return "", err
}
