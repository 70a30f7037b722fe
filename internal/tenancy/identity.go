package tenancy

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// Identity is the ServiceAccount a Subscription's writes are made as.
type Identity struct {
	// Namespace of the ServiceAccount: always the Subscription's.
	Namespace string
	// Name of the ServiceAccount.
	Name string
}

// Username is the user name the API server gives the ServiceAccount,
// system:serviceaccount:<namespace>:<name>.
func (id Identity) Username() string {
	return serviceaccount.MakeUsername(id.Namespace, id.Name)
}

// Groups are the groups the API server gives the ServiceAccount, both when
// it authenticates with a token and when it is impersonated without naming
// groups: system:serviceaccounts, system:serviceaccounts:<namespace> and
// system:authenticated. SubjectAccessReviews name them, so that bindings
// to those groups count as they will for the real requests.
func (id Identity) Groups() []string {
	return append(serviceaccount.MakeGroupNames(id.Namespace), user.AllAuthenticated)
}

func (id Identity) String() string { return "ServiceAccount " + id.Namespace + "/" + id.Name }

// Policy is the cluster's rule for Subscriptions that name no
// ServiceAccount.
type Policy struct {
	// DefaultServiceAccount is the ServiceAccount, in the Subscription's
	// namespace, used when spec.serviceAccountName is empty. Empty: such a
	// Subscription is refused.
	DefaultServiceAccount string
}

// Validate checks the policy's default name.
func (p Policy) Validate() error {
	if p.DefaultServiceAccount == "" {
		return nil
	}
	if errs := validation.IsDNS1123Subdomain(p.DefaultServiceAccount); len(errs) > 0 {
		return fmt.Errorf("default ServiceAccount %q is not a valid name: %s", p.DefaultServiceAccount, strings.Join(errs, "; "))
	}
	return nil
}

// IdentityFor returns the ServiceAccount sub's writes are made as, or
// *NoServiceAccountError.
func (p Policy) IdentityFor(sub *v1alpha1.Subscription) (Identity, error) {
	name := sub.Spec.ServiceAccountName
	if name == "" {
		name = p.DefaultServiceAccount
	}
	if name == "" {
		return Identity{}, &NoServiceAccountError{Namespace: sub.Namespace, Subscription: sub.Name}
	}
	return Identity{Namespace: sub.Namespace, Name: name}, nil
}

// NoServiceAccountError means a Subscription names no ServiceAccount and
// the cluster has no default: nothing is installed for it.
type NoServiceAccountError struct {
	// Namespace and Subscription name the Subscription.
	Namespace, Subscription string
}

func (e *NoServiceAccountError) Error() string {
	return fmt.Sprintf("Subscription %s/%s names no ServiceAccount (spec.serviceAccountName) and the installer has no default (--default-service-account); nothing is installed until one is set", e.Namespace, e.Subscription)
}
