package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"

	jsonv1 "github.com/go-json-experiment/json/v1"
)

// RegistryJSON rewrites a JSON value the way operator-registry puts it on
// the api.Registry wire: every catalog document there is decoded into
// generic Go values (numbers as float64) and encoded again by encoding/json
// with HTML escaping off. The result is compact, object keys are sorted,
// '<', '>' and '&' stay literal, strings are escaped as encoding/json escapes
// them and numbers are written as float64 (1.0 becomes 1; integers beyond
// 2^53 lose precision, as they do upstream). An empty value stays empty.
func RegistryJSON(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return raw, nil
	}
	var v any
	if err := jsonv1.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return marshalNoHTMLEscape(v)
}

// marshalNoHTMLEscape is json.Marshal with HTML escaping off and without the
// newline json.Encoder appends.
func marshalNoHTMLEscape(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// registryForm computes, once at load, the properties and dependencies a
// bundle carries on the api.Registry wire:
//
//   - properties: every property (olm.bundle.object and olm.csv.metadata are
//     already left out of Bundle.Properties) with its value in RegistryJSON
//     form;
//   - dependencies, the legacy projection: olm.gvk.required becomes olm.gvk
//     with the same value, olm.package.required {packageName, versionRange}
//     becomes olm.package {"packageName":…,"version":<range>} (in that key
//     order, HTML escaping off, compact).
//
// A value that is not JSON is reported with the property's index and type.
// When no value changes, the returned properties share props.
func registryForm(props []Property) (properties, dependencies []Property, errs []fieldError) {
	properties = props
	for i, p := range props {
		field := fmt.Sprintf("properties[%d] (%s)", i, p.Type)
		v, err := RegistryJSON(p.Value)
		if err != nil {
			errs = append(errs, fieldError{field, fmt.Sprintf("value is not JSON: %v", err)})
			continue
		}
		if !bytes.Equal(v, p.Value) {
			if &properties[0] == &props[0] {
				properties = append([]Property(nil), props...)
			}
			properties[i].Value = v
		}
		switch p.Type {
		case PropertyGVKRequired:
			dependencies = append(dependencies, Property{Type: PropertyGVK, Value: v})
		case PropertyPackageRequired:
			var r PackageRequirement
			if err := jsonv1.Unmarshal(p.Value, &r); err != nil {
				errs = append(errs, fieldError{field, fmt.Sprintf("value is not {packageName, versionRange}: %v", err)})
				continue
			}
			dv, err := marshalNoHTMLEscape(struct {
				PackageName string `json:"packageName"`
				Version     string `json:"version"`
			}{r.PackageName, r.VersionRange})
			if err != nil {
				errs = append(errs, fieldError{field, err.Error()})
				continue
			}
			dependencies = append(dependencies, Property{Type: PropertyPackage, Value: dv})
		}
	}
	return properties, dependencies, errs
}
