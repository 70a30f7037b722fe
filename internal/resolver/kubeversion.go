package resolver

import (
	"fmt"
	"strings"

	"github.com/blang/semver/v4"

	"github.com/ferrydev/ferry/internal/catalog"
)

// MaxKubeVersionFacts is how many bundles passed over for their minimum
// Kubernetes version an explanation names; the rest are counted.
const MaxKubeVersionFacts = 5

// ParseMinKubeVersion parses a ClusterServiceVersion's spec.minKubeVersion
// leniently, as blang's ParseTolerant does ("1.25", "v1.25.0", "1.19.0-0").
func ParseMinKubeVersion(s string) (semver.Version, error) {
	return semver.ParseTolerant(strings.TrimSpace(s))
}

// ClusterKubeVersion turns the API server's version (its gitVersion, e.g.
// "v1.29.4", "v1.29.4-eks-036c24b", "v1.30.1+k3s1") into the version a
// minimum is compared with: major.minor.patch, without the pre-release and
// build parts distributions add, so that "v1.29.4-eks-036c24b" meets a
// minimum of 1.29.4.
func ClusterKubeVersion(gitVersion string) (semver.Version, error) {
	core, _, _ := strings.Cut(strings.TrimSpace(gitVersion), "+")
	v, err := semver.ParseTolerant(core)
	if err != nil {
		return semver.Version{}, fmt.Errorf("the cluster's Kubernetes version %q is not a version: %w", gitVersion, err)
	}
	return semver.Version{Major: v.Major, Minor: v.Minor, Patch: v.Patch}, nil
}

// kubeFit says why a bundle cannot be installed on the cluster's
// Kubernetes version; "" when it can or nothing is known.
func (r *resolver) kubeFit(cat string, b *catalog.Bundle) (Reason, string) {
	if r.kube == nil || r.minKube == nil {
		return "", ""
	}
	min, known := r.minKube(cat, b)
	if !known || strings.TrimSpace(min) == "" {
		return "", ""
	}
	v, err := ParseMinKubeVersion(min)
	if err != nil {
		return ReasonInvalidMinKubeVersion, fmt.Sprintf("ClusterServiceVersion %s: spec.minKubeVersion %q is not a version: %v", b.Name, min, err)
	}
	if v.GT(*r.kube) {
		return ReasonKubeVersion, fmt.Sprintf("requires Kubernetes ≥ %s (spec.minKubeVersion), the cluster is %s", min, r.kube)
	}
	return "", ""
}
