package install

import (
	validatecontent "k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ferrydev/ferry/internal/kinds"
)

// invalidName returns why the API server would refuse name for an object of
// kind gk, or nothing when it takes it: names of Roles, ClusterRoles and
// their bindings are path segments (system:aggregate-to-view is one), a
// Service's name is a DNS-1035 label, every other kind Ferry installs takes
// a DNS-1123 subdomain.
func invalidName(gk schema.GroupKind, name string) []string {
	switch {
	case gk.Group == kinds.GroupRBAC:
		errs := validatecontent.IsPathSegmentName(name)
		if len(name) > validation.DNS1123SubdomainMaxLength {
			errs = append(errs, validation.MaxLenError(validation.DNS1123SubdomainMaxLength))
		}
		return errs
	case gk.Group == "" && gk.Kind == "Service":
		return validation.IsDNS1035Label(name)
	default:
		return validation.IsDNS1123Subdomain(name)
	}
}
