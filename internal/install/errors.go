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
// install mode asked for. Nothing is applied.
type UnsupportedInstallModeError struct {
	// Requested is the mode asked for; empty when none was and the operator
	// supports neither OwnNamespace nor AllNamespaces.
	Requested v1alpha1.InstallMode
	// Supported lists the modes the operator supports that Ferry offers.
	Supported []v1alpha1.InstallMode
}

func (e *UnsupportedInstallModeError) Error() string {
	sup := make([]string, len(e.Supported))
	for i, m := range e.Supported {
		sup[i] = string(m)
	}
	list := strings.Join(sup, ", ")
	if list == "" {
		list = "none of OwnNamespace, AllNamespaces"
	}
	if e.Requested == "" {
		return "the operator supports no install mode Ferry offers (supported: " + list + ")"
	}
	return fmt.Sprintf("install mode %s is not supported by the operator (supported: %s)", e.Requested, list)
}

// OwnershipConflictError means an object the bundle installs already exists
// and belongs to another Subscription. Ferry does not take it over.
type OwnershipConflictError struct {
	// Object is the object in question.
	Object v1alpha1.ObjectReference
	// OwnerNamespace and OwnerName are the labels of the current owner.
	OwnerNamespace, OwnerName string
}

func (e *OwnershipConflictError) Error() string {
	return fmt.Sprintf("%s already exists and belongs to Subscription %s/%s", describe(e.Object), e.OwnerNamespace, e.OwnerName)
}
