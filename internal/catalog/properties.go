package catalog

import (
	"fmt"

	jsonv1 "github.com/go-json-experiment/json/v1"
)

// Property types the model interprets.
const (
	PropertyPackage         = "olm.package"
	PropertyGVK             = "olm.gvk"
	PropertyPackageRequired = "olm.package.required"
	PropertyGVKRequired     = "olm.gvk.required"
	PropertyConstraint      = "olm.constraint"
	PropertyBundleObject    = "olm.bundle.object"
	PropertyCSVMetadata     = "olm.csv.metadata"
	PropertyLabel           = "olm.label"
	PropertyLabelRequired   = "olm.label.required"
)

// Schemas of file-based catalog documents.
const (
	SchemaPackage      = "olm.package"
	SchemaChannel      = "olm.channel"
	SchemaBundle       = "olm.bundle"
	SchemaDeprecations = "olm.deprecations"
)

// PackageProperty is the value of olm.package.
type PackageProperty struct {
	PackageName string `json:"packageName"`
	Version     string `json:"version"`
}

// Constraint is the value of olm.constraint. Exactly one of the
// constraint kinds is set.
type Constraint struct {
	FailureMessage string              `json:"failureMessage,omitempty"`
	GVK            *GVK                `json:"gvk,omitempty"`
	Package        *PackageRequirement `json:"package,omitempty"`
	CEL            *struct {
		Rule string `json:"rule"`
	} `json:"cel,omitempty"`
	All *CompoundConstraint `json:"all,omitempty"`
	Any *CompoundConstraint `json:"any,omitempty"`
	Not *CompoundConstraint `json:"not,omitempty"`
}

// CompoundConstraint combines constraints.
type CompoundConstraint struct {
	Constraints []Constraint `json:"constraints"`
}

// validate checks that exactly one kind is set, recursively.
func (c *Constraint) validate() error {
	n := 0
	if c.GVK != nil {
		n++
		if c.GVK.Kind == "" || c.GVK.Version == "" {
			return fmt.Errorf("gvk needs version and kind")
		}
	}
	if c.Package != nil {
		n++
		if c.Package.PackageName == "" {
			return fmt.Errorf("package needs packageName")
		}
		if _, err := parseRange(c.Package.VersionRange); err != nil {
			return fmt.Errorf("package.versionRange: %w", err)
		}
	}
	if c.CEL != nil {
		n++
		if c.CEL.Rule == "" {
			return fmt.Errorf("cel needs a rule")
		}
	}
	for _, cc := range []*CompoundConstraint{c.All, c.Any, c.Not} {
		if cc == nil {
			continue
		}
		n++
		for i := range cc.Constraints {
			if err := cc.Constraints[i].validate(); err != nil {
				return err
			}
		}
	}
	if n != 1 {
		return fmt.Errorf("exactly one of gvk, package, cel, all, any, not must be set, found %d", n)
	}
	return nil
}

// bundleDerived holds what the model derives from a bundle's properties.
type bundleDerived struct {
	pkg      *PackageProperty
	provided []GVK
	required []GVK
	packages []PackageRequirement
}

// deriveProperties interprets the known property types; problems are
// returned with the field set to properties[i].
func deriveProperties(props []Property) (bundleDerived, []fieldError) {
	var d bundleDerived
	var errs []fieldError
	for i, p := range props {
		field := fmt.Sprintf("properties[%d] (%s)", i, p.Type)
		switch p.Type {
		case PropertyPackage:
			var v PackageProperty
			if err := jsonv1.Unmarshal(p.Value, &v); err != nil {
				errs = append(errs, fieldError{field, fmt.Sprintf("value is not {packageName, version}: %v", err)})
				continue
			}
			if d.pkg != nil {
				errs = append(errs, fieldError{field, "more than one olm.package property"})
				continue
			}
			d.pkg = &v
		case PropertyGVK, PropertyGVKRequired:
			var g GVK
			if err := jsonv1.Unmarshal(p.Value, &g); err != nil {
				errs = append(errs, fieldError{field, fmt.Sprintf("value is not {group, version, kind}: %v", err)})
				continue
			}
			if g.Version == "" || g.Kind == "" {
				errs = append(errs, fieldError{field, "version and kind are required"})
				continue
			}
			if p.Type == PropertyGVK {
				d.provided = append(d.provided, g)
			} else {
				d.required = append(d.required, g)
			}
		case PropertyPackageRequired:
			var r PackageRequirement
			if err := jsonv1.Unmarshal(p.Value, &r); err != nil {
				errs = append(errs, fieldError{field, fmt.Sprintf("value is not {packageName, versionRange}: %v", err)})
				continue
			}
			if r.PackageName == "" {
				errs = append(errs, fieldError{field, "packageName is required"})
				continue
			}
			if _, err := parseRange(r.VersionRange); err != nil {
				errs = append(errs, fieldError{field, fmt.Sprintf("versionRange %q: %v", r.VersionRange, err)})
				continue
			}
			d.packages = append(d.packages, r)
		case PropertyConstraint:
			var c Constraint
			if err := jsonv1.Unmarshal(p.Value, &c); err != nil {
				errs = append(errs, fieldError{field, fmt.Sprintf("value is not a constraint: %v", err)})
				continue
			}
			if err := c.validate(); err != nil {
				errs = append(errs, fieldError{field, err.Error()})
			}
		}
	}
	return d, errs
}

type fieldError struct {
	field, reason string
}

// IsCustomSchema reports whether documents of the schema are "custom" in
// operator-registry's sense: any schema other than olm.package, olm.channel,
// olm.bundle and olm.deprecations, unknown olm.* schemas included.
func IsCustomSchema(schema string) bool {
	switch schema {
	case SchemaPackage, SchemaChannel, SchemaBundle, SchemaDeprecations:
		return false
	}
	return true
}
