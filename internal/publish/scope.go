package publish

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ferrydev/ferry/internal/catalog"
)

// APIClaimError is a bundle claiming an API that another package of the
// catalog provides, which the publishing token does not cover. Dependency
// resolution picks any provider of a required API, so such a claim would
// let one package's token take over another package's users.
type APIClaimError struct {
	// Bundle and Package are the bundle being published.
	Bundle, Package string
	// API is the claimed API.
	API catalog.GVK
	// Provider is the other package that provides API, and ProviderBundle
	// one of its bundles that does.
	Provider, ProviderBundle string
}

func (e *APIClaimError) Error() string {
	return fmt.Sprintf("bundle %s of package %q claims API %s, which package %q provides (bundle %s); the token does not cover package %q",
		e.Bundle, e.Package, e.API, e.Provider, e.ProviderBundle, e.Provider)
}

// CheckClaims returns an *APIClaimError, joined, for every API the bundle
// claims (info.ClaimedAPIs) that a package of c other than the bundle's own
// provides and the grant does not allow. nil when there is none.
func CheckClaims(c *catalog.Catalog, info *catalog.BundleInfo, g *Grant) error {
	var claims []*APIClaimError
	for _, api := range info.ClaimedAPIs {
		seen := map[string]bool{}
		providers := c.Providers(api)
		// Sorted by package and version: name the newest bundle of each package.
		for i := len(providers) - 1; i >= 0; i-- {
			b := providers[i]
			if b.Package == info.Package || seen[b.Package] || g.Allows(b.Package) {
				continue
			}
			seen[b.Package] = true
			claims = append(claims, &APIClaimError{Bundle: info.Name, Package: info.Package, API: api, Provider: b.Package, ProviderBundle: b.Name})
		}
	}
	sort.SliceStable(claims, func(i, j int) bool {
		if claims[i].API != claims[j].API {
			return claims[i].API.String() < claims[j].API.String()
		}
		return claims[i].Provider < claims[j].Provider
	})
	errs := make([]error, len(claims))
	for i, e := range claims {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// ParsePackages reads a package list as a tokens file writes it: comma- or
// space-separated names; "*" or nothing means every package.
func ParsePackages(s string) []string {
	var pkgs []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if p == "*" {
			return nil
		}
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	return pkgs
}
