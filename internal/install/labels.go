package install

import (
	"crypto/sha256"
	"encoding/hex"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// FieldManager is the server-side apply field manager Ferry applies with.
const FieldManager = "ferry"

// Labels and annotations Ferry puts on every object it installs.
const (
	// LabelManagedBy is set to ManagedByValue on every installed object.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "ferry"
	// LabelOwnerNamespace is the namespace of the owning Subscription.
	LabelOwnerNamespace = "operators.ferry.dev/owner-namespace"
	// LabelOwnerName is the name of the owning Subscription. Names longer
	// than a label value allows are shortened, see LabelValue.
	LabelOwnerName = "operators.ferry.dev/owner-name"
	// LabelPackage is the operator package the object belongs to.
	LabelPackage = "operators.ferry.dev/package"
	// AnnotationBundle names the bundle (CSV) that last applied the object.
	AnnotationBundle = "operators.ferry.dev/bundle"
	// AnnotationGeneratedFrom marks RBAC objects Ferry derives from the CSV's
	// permissions or clusterPermissions, e.g. "permissions/<sa>/0". Their
	// names change from version to version; Changes matches them by this
	// value instead.
	AnnotationGeneratedFrom = "operators.ferry.dev/generated-from"
	// AnnotationTargetNamespaces is the pod template annotation that tells
	// the operator which namespaces to watch ("" means all), as OLM sets it.
	AnnotationTargetNamespaces = "olm.targetNamespaces"
)

// LabelValue returns s when it is a valid label value, otherwise a valid one
// derived from it: a prefix of s followed by a hash of all of s.
func LabelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:])[:10]
	prefix := []byte{}
	for i := 0; i < len(s) && len(prefix) < validation.LabelValueMaxLength-len(h)-1; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			prefix = append(prefix, c)
		}
	}
	// A label value must start with an alphanumeric character.
	for len(prefix) > 0 && !isAlnum(prefix[0]) {
		prefix = prefix[1:]
	}
	if len(prefix) == 0 {
		return h
	}
	return string(prefix) + "-" + h
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// OwnerLabels returns the ownership labels of objects installed for owner.
func OwnerLabels(owner types.NamespacedName) map[string]string {
	return map[string]string{
		LabelManagedBy:      ManagedByValue,
		LabelOwnerNamespace: LabelValue(owner.Namespace),
		LabelOwnerName:      LabelValue(owner.Name),
	}
}

// OwnerSelector selects every object Ferry installed for owner.
func OwnerSelector(owner types.NamespacedName) labels.Selector {
	return labels.SelectorFromSet(OwnerLabels(owner))
}

// ownedBy reports whether an object with labels l was installed for owner.
func ownedBy(l map[string]string, owner types.NamespacedName) bool {
	return OwnerSelector(owner).Matches(labels.Set(l))
}

// managedByFerry reports whether labels l mark an object Ferry installed.
func managedByFerry(l map[string]string) bool { return l[LabelManagedBy] == ManagedByValue }
