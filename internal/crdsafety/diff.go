package crdsafety

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// Diff compares two CRDs statically and returns the changes that can break
// existing clients or data, in a stable order. It is pure: it reads only
// its arguments. old.Status.StoredVersions is taken into account, so pass
// the live CRD as old. Diff returns nil when old or new is nil.
//
// Only changes that make the schema stricter are reported: a constraint the
// old schema already had, or a field that was already required, does not
// count again.
func Diff(old, new *apiextensionsv1.CustomResourceDefinition) []Finding {
	if old == nil || new == nil {
		return nil
	}
	d := differ{crd: new.Name}
	if d.crd == "" {
		d.crd = old.Name
	}

	if old.Spec.Scope != new.Spec.Scope {
		d.add(Finding{Kind: KindScopeChanged,
			Message: fmt.Sprintf("scope changed from %s to %s", old.Spec.Scope, new.Spec.Scope)})
	}

	newVersions := map[string]*apiextensionsv1.CustomResourceDefinitionVersion{}
	for i := range new.Spec.Versions {
		newVersions[new.Spec.Versions[i].Name] = &new.Spec.Versions[i]
	}
	stored := map[string]bool{}
	for _, sv := range old.Status.StoredVersions {
		stored[sv] = true
		if newVersions[sv] == nil {
			d.add(Finding{Version: sv, Kind: KindStoredVersionRemoved,
				Message: fmt.Sprintf("version %s is listed in status.storedVersions but is missing from the new spec.versions; objects stored as %s could no longer be read", sv, sv)})
		}
	}
	for i := range old.Spec.Versions {
		ov := &old.Spec.Versions[i]
		nv := newVersions[ov.Name]
		switch {
		case nv == nil && ov.Served && !stored[ov.Name]:
			d.add(Finding{Version: ov.Name, Kind: KindServedVersionRemoved,
				Message: fmt.Sprintf("served version %s removed", ov.Name)})
		case nv != nil && ov.Served && !nv.Served:
			d.add(Finding{Version: ov.Name, Kind: KindServedVersionUnserved,
				Message: fmt.Sprintf("served version %s is no longer served", ov.Name)})
		}
	}
	for i := range old.Spec.Versions {
		ov := &old.Spec.Versions[i]
		nv := newVersions[ov.Name]
		if nv == nil || ov.Schema == nil || nv.Schema == nil ||
			ov.Schema.OpenAPIV3Schema == nil || nv.Schema.OpenAPIV3Schema == nil {
			continue
		}
		d.version = ov.Name
		d.schema("", ov.Schema.OpenAPIV3Schema, nv.Schema.OpenAPIV3Schema)
	}
	return d.findings
}

type differ struct {
	crd      string
	version  string
	findings []Finding
}

func (d *differ) add(f Finding) {
	f.CRD = d.crd
	prefix := "CRD " + d.crd
	if f.Version != "" && f.Kind != KindStoredVersionRemoved && f.Kind != KindServedVersionRemoved && f.Kind != KindServedVersionUnserved {
		prefix += " version " + f.Version
	}
	if f.Field != "" {
		prefix += ": field " + f.Field
	}
	f.Message = prefix + ": " + f.Message
	d.findings = append(d.findings, f)
}

func (d *differ) field(path string, kind FindingKind, format string, args ...any) {
	d.add(Finding{Version: d.version, Field: path, Kind: kind, Message: fmt.Sprintf(format, args...)})
}

// child returns the path of property name under path.
func child(path, name string) string {
	if strings.ContainsAny(name, ".[]* ") || name == "" {
		name = "[" + strconv.Quote(name) + "]"
		return path + name
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

func fieldOf(path string) string {
	if path == "" {
		return "(root)"
	}
	return path
}

// typeOf names the set of values a schema node's type admits.
func typeOf(s *apiextensionsv1.JSONSchemaProps) string {
	if s.XIntOrString {
		return "int-or-string"
	}
	if s.Type == "" {
		return "any"
	}
	return s.Type
}

// typeWidens reports whether every value of type from is a value of type to.
func typeWidens(from, to string) bool {
	switch {
	case from == to, to == "any":
		return true
	case from == "integer" && to == "number":
		return true
	case to == "int-or-string" && (from == "integer" || from == "string"):
		return true
	}
	return false
}

func preserves(s *apiextensionsv1.JSONSchemaProps) bool {
	return s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields
}

func (d *differ) schema(path string, o, n *apiextensionsv1.JSONSchemaProps) {
	ot, nt := typeOf(o), typeOf(n)
	if !typeWidens(ot, nt) {
		d.field(fieldOf(path), KindTypeChanged, "type changed from %s to %s", ot, nt)
		return // the rest of the comparison would only repeat the change
	}
	if o.Nullable && !n.Nullable {
		d.field(fieldOf(path), KindTypeChanged, "no longer nullable")
	}
	if n.Format != "" && n.Format != o.Format {
		if o.Format == "" {
			d.field(fieldOf(path), KindFormatChanged, "format %s added", n.Format)
		} else {
			d.field(fieldOf(path), KindFormatChanged, "format changed from %s to %s", o.Format, n.Format)
		}
	}
	d.enum(path, o, n)
	d.bounds(path, o, n)
	if n.Pattern != "" && n.Pattern != o.Pattern {
		if o.Pattern == "" {
			d.field(fieldOf(path), KindPatternChanged, "pattern %q added", n.Pattern)
		} else {
			d.field(fieldOf(path), KindPatternChanged, "pattern changed from %q to %q", o.Pattern, n.Pattern)
		}
	}
	d.listType(path, o, n)
	d.rules(path, o, n)
	d.combinators(path, o, n)

	for _, r := range n.Required {
		if np, ok := n.Properties[r]; ok && np.Default != nil {
			// The API server defaults it on every read and write.
			continue
		}
		if !slices.Contains(o.Required, r) {
			d.field(child(path, r), KindRequiredAdded, "new required field")
		}
	}

	if preserves(o) && !preserves(n) {
		d.field(fieldOf(path), KindFieldRemoved, "unknown fields are no longer preserved (x-kubernetes-preserve-unknown-fields removed); they would be pruned")
	}
	names := make([]string, 0, len(o.Properties))
	for name := range o.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		op := o.Properties[name]
		np, ok := n.Properties[name]
		if !ok {
			switch {
			case n.AdditionalProperties != nil && n.AdditionalProperties.Schema != nil:
				d.schema(child(path, name), &op, n.AdditionalProperties.Schema)
			case preserves(n):
				// The data is kept; only its validation is gone.
			default:
				d.field(child(path, name), KindFieldRemoved, "field removed")
			}
			continue
		}
		d.schema(child(path, name), &op, &np)
	}
	if o.AdditionalProperties != nil && o.AdditionalProperties.Schema != nil {
		switch {
		case n.AdditionalProperties != nil && n.AdditionalProperties.Schema != nil:
			d.schema(path+"[*]", o.AdditionalProperties.Schema, n.AdditionalProperties.Schema)
		case preserves(n):
		default:
			d.field(fieldOf(path), KindFieldRemoved, "additionalProperties removed; map entries would be pruned")
		}
	}
	if o.Items != nil && o.Items.Schema != nil && n.Items != nil && n.Items.Schema != nil {
		d.schema(path+"[*]", o.Items.Schema, n.Items.Schema)
	}
}

func canonicalJSON(raw []byte) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(bytes.TrimSpace(raw))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return string(raw)
	}
	return string(b)
}

func (d *differ) enum(path string, o, n *apiextensionsv1.JSONSchemaProps) {
	if len(n.Enum) == 0 {
		return
	}
	var newValues []string
	have := map[string]bool{}
	for _, v := range n.Enum {
		c := canonicalJSON(v.Raw)
		have[c] = true
		newValues = append(newValues, c)
	}
	if len(o.Enum) == 0 {
		d.field(fieldOf(path), KindEnumNarrowed, "enum added: only %s allowed", strings.Join(newValues, ", "))
		return
	}
	var removed []string
	for _, v := range o.Enum {
		if c := canonicalJSON(v.Raw); !have[c] {
			removed = append(removed, c)
		}
	}
	if len(removed) > 0 {
		d.field(fieldOf(path), KindEnumNarrowed, "enum values removed: %s", strings.Join(removed, ", "))
	}
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func (d *differ) bounds(path string, o, n *apiextensionsv1.JSONSchemaProps) {
	p := fieldOf(path)
	if n.Minimum != nil {
		switch {
		case o.Minimum == nil:
			d.field(p, KindBoundsTightened, "minimum %s added", num(*n.Minimum))
		case *n.Minimum > *o.Minimum:
			d.field(p, KindBoundsTightened, "minimum raised from %s to %s", num(*o.Minimum), num(*n.Minimum))
		case *n.Minimum == *o.Minimum && n.ExclusiveMinimum && !o.ExclusiveMinimum:
			d.field(p, KindBoundsTightened, "minimum %s made exclusive", num(*n.Minimum))
		}
	}
	if n.Maximum != nil {
		switch {
		case o.Maximum == nil:
			d.field(p, KindBoundsTightened, "maximum %s added", num(*n.Maximum))
		case *n.Maximum < *o.Maximum:
			d.field(p, KindBoundsTightened, "maximum lowered from %s to %s", num(*o.Maximum), num(*n.Maximum))
		case *n.Maximum == *o.Maximum && n.ExclusiveMaximum && !o.ExclusiveMaximum:
			d.field(p, KindBoundsTightened, "maximum %s made exclusive", num(*n.Maximum))
		}
	}
	if n.MultipleOf != nil {
		switch {
		case o.MultipleOf == nil:
			d.field(p, KindBoundsTightened, "multipleOf %s added", num(*n.MultipleOf))
		case !isMultiple(*o.MultipleOf, *n.MultipleOf):
			d.field(p, KindBoundsTightened, "multipleOf changed from %s to %s", num(*o.MultipleOf), num(*n.MultipleOf))
		}
	}
	d.lower(p, "minLength", o.MinLength, n.MinLength)
	d.upper(p, "maxLength", o.MaxLength, n.MaxLength)
	d.lower(p, "minItems", o.MinItems, n.MinItems)
	d.upper(p, "maxItems", o.MaxItems, n.MaxItems)
	d.lower(p, "minProperties", o.MinProperties, n.MinProperties)
	d.upper(p, "maxProperties", o.MaxProperties, n.MaxProperties)
}

// isMultiple reports whether every multiple of a is a multiple of b.
func isMultiple(a, b float64) bool {
	if b == 0 {
		return false
	}
	q := a / b
	return math.Abs(q-math.Round(q)) < 1e-9
}

func (d *differ) lower(p, name string, o, n *int64) {
	if n == nil || *n == 0 {
		return
	}
	switch {
	case o == nil || *o == 0:
		d.field(p, KindBoundsTightened, "%s %d added", name, *n)
	case *n > *o:
		d.field(p, KindBoundsTightened, "%s raised from %d to %d", name, *o, *n)
	}
}

func (d *differ) upper(p, name string, o, n *int64) {
	if n == nil {
		return
	}
	switch {
	case o == nil:
		d.field(p, KindBoundsTightened, "%s %d added", name, *n)
	case *n < *o:
		d.field(p, KindBoundsTightened, "%s lowered from %d to %d", name, *o, *n)
	}
}

func listTypeOf(s *apiextensionsv1.JSONSchemaProps) string {
	if s.XListType == nil {
		return "atomic"
	}
	return *s.XListType
}

func (d *differ) listType(path string, o, n *apiextensionsv1.JSONSchemaProps) {
	if typeOf(n) != "array" {
		return
	}
	ol, nl := listTypeOf(o), listTypeOf(n)
	switch {
	case ol != nl && nl != "atomic":
		d.field(fieldOf(path), KindListTypeChanged, "x-kubernetes-list-type changed from %s to %s", ol, nl)
	case nl == "map" && !slices.Equal(o.XListMapKeys, n.XListMapKeys):
		// Fewer keys make more lists have duplicates; other keys may be absent.
		d.field(fieldOf(path), KindListTypeChanged, "x-kubernetes-list-map-keys changed from [%s] to [%s]",
			strings.Join(o.XListMapKeys, ", "), strings.Join(n.XListMapKeys, ", "))
	}
}

func (d *differ) rules(path string, o, n *apiextensionsv1.JSONSchemaProps) {
	for _, r := range n.XValidations {
		if !slices.ContainsFunc(o.XValidations, func(x apiextensionsv1.ValidationRule) bool { return x.Rule == r.Rule }) {
			d.field(fieldOf(path), KindValidationRuleAdded, "validation rule added: %s", r.Rule)
		}
	}
}

func (d *differ) combinators(path string, o, n *apiextensionsv1.JSONSchemaProps) {
	check := func(name string, ov, nv any, empty bool) {
		if !empty && !reflect.DeepEqual(ov, nv) {
			d.field(fieldOf(path), KindCombinatorChanged, "%s changed", name)
		}
	}
	check("allOf", o.AllOf, n.AllOf, len(n.AllOf) == 0)
	check("anyOf", o.AnyOf, n.AnyOf, len(n.AnyOf) == 0)
	check("oneOf", o.OneOf, n.OneOf, len(n.OneOf) == 0)
	check("not", o.Not, n.Not, n.Not == nil)
}
