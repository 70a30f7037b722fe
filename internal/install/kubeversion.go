package install

import (
	"encoding/json"
	"fmt"

	"github.com/ferrydev/ferry/internal/catalog"
)

// MinKubeVersionTypeError means a ClusterServiceVersion's
// spec.minKubeVersion is not a string: in YAML, an unquoted 1.30 is the
// number 1.3.
type MinKubeVersionTypeError struct {
	// CSV is the ClusterServiceVersion's name.
	CSV string
	// Value is the value as JSON.
	Value string
}

func (e *MinKubeVersionTypeError) Error() string {
	return fmt.Sprintf("ClusterServiceVersion %s: spec.minKubeVersion is %s, not a string (quote it in YAML: an unquoted 1.30 is the number 1.3)", e.CSV, e.Value)
}

// MinKubeVersion returns the spec.minKubeVersion of the bundle's
// ClusterServiceVersion as written ("" when it sets none). It returns
// *InvalidBundleError when the manifests hold no ClusterServiceVersion, or
// more than one, or one that cannot be read, and *MinKubeVersionTypeError
// when the value is not a string.
func MinKubeVersion(ms []catalog.Manifest) (string, error) {
	var found []catalog.Manifest
	for _, m := range ms {
		if m.Kind == catalog.KindClusterServiceVersion {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		return "", &InvalidBundleError{Reason: fmt.Sprintf("%d ClusterServiceVersions among the %d manifests; a bundle has exactly one", len(found), len(ms))}
	}
	var csv struct {
		Spec struct {
			MinKubeVersion *json.RawMessage `json:"minKubeVersion"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(found[0].JSON, &csv); err != nil {
		return "", &InvalidBundleError{Bundle: found[0].Name, Reason: fmt.Sprintf("ClusterServiceVersion %s cannot be read: %v", found[0].Name, err)}
	}
	if csv.Spec.MinKubeVersion == nil {
		return "", nil
	}
	var v string
	if err := json.Unmarshal(*csv.Spec.MinKubeVersion, &v); err != nil {
		return "", &MinKubeVersionTypeError{CSV: found[0].Name, Value: string(*csv.Spec.MinKubeVersion)}
	}
	return v, nil
}
