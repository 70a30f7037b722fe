package crdsafety

import "fmt"

// Policy says what Check does with its findings.
type Policy string

const (
	// PolicyStrict reports the findings and blocks the change when any of
	// them is blocking. It is the default (the empty Policy means Strict).
	PolicyStrict Policy = "Strict"
	// PolicyWarn reports the findings but never blocks.
	PolicyWarn Policy = "Warn"
	// PolicyNone skips the checks: no findings, never blocked.
	PolicyNone Policy = "None"
)

// ParsePolicy returns the Policy named s ("" means Strict). Names are case
// sensitive.
func ParsePolicy(s string) (Policy, error) {
	switch Policy(s) {
	case "", PolicyStrict:
		return PolicyStrict, nil
	case PolicyWarn:
		return PolicyWarn, nil
	case PolicyNone:
		return PolicyNone, nil
	}
	return "", fmt.Errorf("unknown CRD upgrade safety policy %q (want %s, %s or %s)", s, PolicyStrict, PolicyWarn, PolicyNone)
}

// FindingKind classifies a Finding.
type FindingKind string

const (
	// KindStoredVersionRemoved means a version listed in the live CRD's
	// status.storedVersions is missing from the new spec.versions.
	KindStoredVersionRemoved FindingKind = "StoredVersionRemoved"
	// KindServedVersionRemoved means a version the live CRD serves is missing
	// from the new spec.versions.
	KindServedVersionRemoved FindingKind = "ServedVersionRemoved"
	// KindServedVersionUnserved means a version the live CRD serves is still in
	// the new spec.versions but with served: false.
	KindServedVersionUnserved FindingKind = "ServedVersionUnserved"
	// KindScopeChanged means spec.scope changed (Namespaced <-> Cluster).
	KindScopeChanged FindingKind = "ScopeChanged"
	// KindFieldRemoved means a property (or a map's additionalProperties, or the
	// preservation of unknown fields) is gone from the new schema, so the
	// data it held would be pruned.
	KindFieldRemoved FindingKind = "FieldRemoved"
	// KindTypeChanged means the type of a field changed to one that does not
	// accept every value of the old type, or the field is no longer nullable.
	KindTypeChanged FindingKind = "TypeChanged"
	// KindFormatChanged means a format was added to or changed on a field.
	KindFormatChanged FindingKind = "FormatChanged"
	// KindRequiredAdded means a field that was optional is now required.
	KindRequiredAdded FindingKind = "RequiredAdded"
	// KindEnumNarrowed means an enum lost values, or a field without an enum got one.
	KindEnumNarrowed FindingKind = "EnumNarrowed"
	// KindBoundsTightened means minimum/maximum (or their exclusive flags),
	// min/max length, items, properties or multipleOf became stricter.
	KindBoundsTightened FindingKind = "BoundsTightened"
	// KindPatternChanged means a pattern was added or changed.
	KindPatternChanged FindingKind = "PatternChanged"
	// KindListTypeChanged means x-kubernetes-list-type or its map keys changed to
	// something stricter (set or map where the list was atomic, other keys).
	KindListTypeChanged FindingKind = "ListTypeChanged"
	// KindValidationRuleAdded means a CEL rule (x-kubernetes-validations) was added that the
	// old schema did not have.
	KindValidationRuleAdded FindingKind = "ValidationRuleAdded"
	// KindCombinatorChanged means allOf, anyOf, oneOf or not changed. Reported
	// conservatively: the check does not work out whether the change widens.
	KindCombinatorChanged FindingKind = "CombinatorChanged"
	// KindInvalidObject means an existing custom resource does not validate
	// against the new schema.
	KindInvalidObject FindingKind = "InvalidObject"
	// KindAlreadyInvalidObject means an existing custom resource does not
	// validate against the new schema, but the same field was already
	// invalid under the old schema. It does not block.
	KindAlreadyInvalidObject FindingKind = "AlreadyInvalidObject"
)

// Finding is one reason why changing a CRD may break existing clients or data.
type Finding struct {
	// CRD is the CRD's name, e.g. beacons.lighthouse.ferry.dev.
	CRD string
	// Version is the CRD version the finding is about, if any.
	Version string
	// Field is the path of the field, e.g. spec.intervalSeconds or
	// status.conditions[*].reason, if any.
	Field string
	// Object is the namespace/name (name for cluster-scoped resources) of
	// the custom resource the finding is about, if any.
	Object string
	// Kind classifies the finding.
	Kind FindingKind
	// Message is a complete sentence naming the CRD, the version, the object
	// and the field, where they apply.
	Message string
}

// Blocking reports whether the finding blocks the change under PolicyStrict.
// Every kind blocks except KindAlreadyInvalidObject.
func (f Finding) Blocking() bool { return f.Kind != KindAlreadyInvalidObject }

func (f Finding) String() string { return f.Message }

// Result is the outcome of Check.
type Result struct {
	// Findings are all findings, blocking or not, in a stable order: the
	// static ones (as Diff returns them) first, then one per invalid field
	// of each custom resource.
	Findings []Finding
	// Blocked is true when the policy is Strict and at least one finding is
	// blocking. The caller must then not apply the new CRD.
	Blocked bool
	// ObjectsChecked is the number of custom resources validated.
	ObjectsChecked int
}

// BlockingFindings returns the findings that block under PolicyStrict.
func (r Result) BlockingFindings() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Blocking() {
			out = append(out, f)
		}
	}
	return out
}
