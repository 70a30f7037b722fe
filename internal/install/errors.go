package install

import (
	"fmt"
	"strings"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// InvalidBundleError means the bundle cannot be installed as it is. Reason
// names the manifest, the field and what is wrong with it.
type InvalidBundleError struct {
	// Bundle is the bundle (CSV) name, when known.
	Bundle string
	// Reason says which file or field is wrong and why.
	Reason string
}

func (e *InvalidBundleError) Error() string {
	if e.Bundle == "" {
		return "invalid bundle: " + e.Reason
	}
	return fmt.Sprintf("invalid bundle %s: %s", e.Bundle, e.Reason)
}

// UnsupportedInstallModeError means the operator does not support the
// install mode asked for, or the target namespaces do not fit the mode.
// Nothing is applied.
type UnsupportedInstallModeError struct {
	// Requested is the mode asked for; empty when none was and the operator
	// supports neither AllNamespaces nor OwnNamespace, the modes chosen
	// when none is asked for.
	Requested v1alpha1.InstallMode
	// Supported lists the modes the operator supports.
	Supported []v1alpha1.InstallMode
	// Targets, when set, says why the target namespaces do not fit the
	// mode; the operator may support the mode.
	Targets string
}

func (e *UnsupportedInstallModeError) Error() string {
	if e.Targets != "" {
		return fmt.Sprintf("install mode %s: %s", e.Requested, e.Targets)
	}
	sup := make([]string, len(e.Supported))
	for i, m := range e.Supported {
		sup[i] = string(m)
	}
	list := strings.Join(sup, ", ")
	if list == "" {
		list = "none"
	}
	if e.Requested == "" && len(e.Supported) == 0 {
		return "the operator supports no install mode"
	}
	if e.Requested == "" {
		return "the operator supports neither AllNamespaces nor OwnNamespace, the modes chosen without spec.installMode; set spec.installMode and spec.targetNamespaces (supported: " + list + ")"
	}
	return fmt.Sprintf("install mode %s is not supported by the operator (supported: %s)", e.Requested, list)
}

// OwnershipConflictError means an object the bundle installs already exists
// and Ferry may not change it for this Subscription: it belongs to another
// Subscription, it is a CRD of another package, or Ferry did not create it
// and adoption was not asked for. Nothing is applied.
type OwnershipConflictError struct {
	// Object is the object in question.
	Object v1alpha1.ObjectReference
	// OwnerNamespace and OwnerName name the Ferry Subscription that owns
	// the object; empty when Ferry does not manage it.
	OwnerNamespace, OwnerName string
	// OwnerPackage is the package label of a Ferry-managed object.
	OwnerPackage string
	// CRDOfOtherPackage is set for a CRD owned by a Subscription of another
	// package: CRDs are shared only within one package.
	CRDOfOtherPackage bool
	// Managers are the field managers of an object Ferry does not manage,
	// from its managedFields (e.g. kubectl-create, helm, kube-apiserver).
	Managers []string
	// ManagedBy is the object's app.kubernetes.io/managed-by label, if any.
	ManagedBy string
}

func (e *OwnershipConflictError) Error() string {
	if e.OwnerName != "" {
		if e.CRDOfOtherPackage {
			return fmt.Sprintf("%s already exists and belongs to package %s (Subscription %s/%s); a CRD is shared only between Subscriptions of the same package",
				describe(e.Object), e.OwnerPackage, e.OwnerNamespace, e.OwnerName)
		}
		return fmt.Sprintf("%s already exists and belongs to Subscription %s/%s", describe(e.Object), e.OwnerNamespace, e.OwnerName)
	}
	var who []string
	if len(e.Managers) > 0 {
		who = append(who, "field managers "+strings.Join(e.Managers, ", "))
	}
	if e.ManagedBy != "" {
		who = append(who, LabelManagedBy+"="+e.ManagedBy)
	}
	if len(who) == 0 {
		who = append(who, "no field manager recorded")
	}
	return fmt.Sprintf("%s already exists and was not created by Ferry (%s); it is left untouched: delete it, or set spec.adoption.policy to AdoptUnmanaged to let Ferry take it over",
		describe(e.Object), strings.Join(who, "; "))
}
