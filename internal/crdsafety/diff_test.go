package crdsafety_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/ferrydev/ferry/internal/crdsafety"
)

// beaconCRD decodes the Beacon CRD of the given lighthouse-operator bundle.
func beaconCRD(t testing.TB, bundleVersion string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	path := filepath.Join("..", "..", "bundles", "lighthouse-operator", bundleVersion, "manifests", "lighthouse.ferry.dev_beacons.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, crd); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	return crd
}

// live returns the 1.3.0 Beacon CRD as the API server would show it
// installed: v1 in status.storedVersions.
func live(t testing.TB) *apiextensionsv1.CustomResourceDefinition {
	crd := beaconCRD(t, "1.3.0")
	crd.Status.StoredVersions = []string{"v1"}
	return crd
}

// edit applies fn to the schema node of version at path ("*" steps into
// array items or map values).
func edit(t testing.TB, crd *apiextensionsv1.CustomResourceDefinition, version string, fn func(*apiextensionsv1.JSONSchemaProps), path ...string) {
	t.Helper()
	for i := range crd.Spec.Versions {
		if crd.Spec.Versions[i].Name == version {
			editAt(t, crd.Spec.Versions[i].Schema.OpenAPIV3Schema, path, fn)
			return
		}
	}
	t.Fatalf("no version %s", version)
}

func editAt(t testing.TB, s *apiextensionsv1.JSONSchemaProps, path []string, fn func(*apiextensionsv1.JSONSchemaProps)) {
	t.Helper()
	if len(path) == 0 {
		fn(s)
		return
	}
	if path[0] == "*" {
		switch {
		case s.Items != nil && s.Items.Schema != nil:
			editAt(t, s.Items.Schema, path[1:], fn)
		case s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
			editAt(t, s.AdditionalProperties.Schema, path[1:], fn)
		default:
			t.Fatalf("no items at %v", path)
		}
		return
	}
	p, ok := s.Properties[path[0]]
	if !ok {
		t.Fatalf("no property %s", path[0])
	}
	editAt(t, &p, path[1:], fn)
	s.Properties[path[0]] = p
}

func enumOf(values ...string) []apiextensionsv1.JSON {
	out := make([]apiextensionsv1.JSON, 0, len(values))
	for _, v := range values {
		out = append(out, apiextensionsv1.JSON{Raw: []byte(`"` + v + `"`)})
	}
	return out
}

func removeVersion(crd *apiextensionsv1.CustomResourceDefinition, name string) {
	crd.Spec.Versions = slices.DeleteFunc(crd.Spec.Versions, func(v apiextensionsv1.CustomResourceDefinitionVersion) bool { return v.Name == name })
}

func messages(fs []crdsafety.Finding) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.Message)
	}
	return out
}

const prefix = "CRD beacons.lighthouse.ferry.dev version v1: field "

func TestDiffReportsBreakingChanges(t *testing.T) {
	type change func(t testing.TB, old, new *apiextensionsv1.CustomResourceDefinition)
	onV1 := func(fn func(*apiextensionsv1.JSONSchemaProps), path ...string) change {
		return func(t testing.TB, _, new *apiextensionsv1.CustomResourceDefinition) { edit(t, new, "v1", fn, path...) }
	}
	cases := []struct {
		name   string
		change change
		kind   crdsafety.FindingKind
		field  string
		want   string
	}{
		{"removed field", onV1(func(s *apiextensionsv1.JSONSchemaProps) { delete(s.Properties, "region") }, "spec"),
			crdsafety.KindFieldRemoved, "spec.region", prefix + "spec.region: field removed"},
		{"removed nested field", onV1(func(s *apiextensionsv1.JSONSchemaProps) { delete(s.Properties, "observedGeneration") }, "status", "conditions", "*"),
			crdsafety.KindFieldRemoved, "status.conditions[*].observedGeneration", prefix + "status.conditions[*].observedGeneration: field removed"},
		{"type changed", onV1(func(s *apiextensionsv1.JSONSchemaProps) {
			*s = apiextensionsv1.JSONSchemaProps{Type: "string"}
		}, "spec", "intervalSeconds"),
			crdsafety.KindTypeChanged, "spec.intervalSeconds", prefix + "spec.intervalSeconds: type changed from integer to string"},
		{"number narrowed to integer", onV1(func(s *apiextensionsv1.JSONSchemaProps) {
			s.Properties["ratio"] = apiextensionsv1.JSONSchemaProps{Type: "integer"}
		}, "spec"),
			crdsafety.KindTypeChanged, "spec.ratio", prefix + "spec.ratio: type changed from number to integer"},
		{"no longer nullable", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Nullable = false }, "spec", "message"),
			crdsafety.KindTypeChanged, "spec.message", prefix + "spec.message: no longer nullable"},
		{"format added", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Format = "hostname" }, "spec", "target"),
			crdsafety.KindFormatChanged, "spec.target", prefix + "spec.target: format hostname added"},
		{"new required field", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Required = append(s.Required, "region") }, "spec"),
			crdsafety.KindRequiredAdded, "spec.region", prefix + "spec.region: new required field"},
		{"new required field that is also new", onV1(func(s *apiextensionsv1.JSONSchemaProps) {
			s.Properties["owner"] = apiextensionsv1.JSONSchemaProps{Type: "string"}
			s.Required = append(s.Required, "owner")
		}, "spec"),
			crdsafety.KindRequiredAdded, "spec.owner", prefix + "spec.owner: new required field"},
		{"enum narrowed", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Enum = enumOf("Steady", "Pulse") }, "spec", "pattern"),
			crdsafety.KindEnumNarrowed, "spec.pattern", prefix + `spec.pattern: enum values removed: "Strobe"`},
		{"enum added", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Enum = enumOf("eu", "us") }, "spec", "region"),
			crdsafety.KindEnumNarrowed, "spec.region", prefix + `spec.region: enum added: only "eu", "us" allowed`},
		{"minimum raised", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Minimum = ptr.To(10.0) }, "spec", "intervalSeconds"),
			crdsafety.KindBoundsTightened, "spec.intervalSeconds", prefix + "spec.intervalSeconds: minimum raised from 5 to 10"},
		{"minimum made exclusive", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.ExclusiveMinimum = true }, "spec", "intervalSeconds"),
			crdsafety.KindBoundsTightened, "spec.intervalSeconds", prefix + "spec.intervalSeconds: minimum 5 made exclusive"},
		{"maximum lowered", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Maximum = ptr.To(600.0) }, "spec", "intervalSeconds"),
			crdsafety.KindBoundsTightened, "spec.intervalSeconds", prefix + "spec.intervalSeconds: maximum lowered from 3600 to 600"},
		{"maximum made exclusive", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.ExclusiveMaximum = true }, "spec", "intervalSeconds"),
			crdsafety.KindBoundsTightened, "spec.intervalSeconds", prefix + "spec.intervalSeconds: maximum 3600 made exclusive"},
		{"minimum added", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Minimum = ptr.To(1.0) }, "status", "observedGeneration"),
			crdsafety.KindBoundsTightened, "status.observedGeneration", prefix + "status.observedGeneration: minimum 1 added"},
		{"multipleOf added", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.MultipleOf = ptr.To(5.0) }, "spec", "intervalSeconds"),
			crdsafety.KindBoundsTightened, "spec.intervalSeconds", prefix + "spec.intervalSeconds: multipleOf 5 added"},
		{"minLength raised", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.MinLength = ptr.To[int64](3) }, "spec", "target"),
			crdsafety.KindBoundsTightened, "spec.target", prefix + "spec.target: minLength raised from 1 to 3"},
		{"maxLength lowered", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.MaxLength = ptr.To[int64](63) }, "spec", "target"),
			crdsafety.KindBoundsTightened, "spec.target", prefix + "spec.target: maxLength lowered from 253 to 63"},
		{"nested maxLength lowered", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.MaxLength = ptr.To[int64](64) }, "status", "conditions", "*", "reason"),
			crdsafety.KindBoundsTightened, "status.conditions[*].reason", prefix + "status.conditions[*].reason: maxLength lowered from 1024 to 64"},
		{"minItems added", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.MinItems = ptr.To[int64](1) }, "status", "conditions"),
			crdsafety.KindBoundsTightened, "status.conditions", prefix + "status.conditions: minItems 1 added"},
		{"maxItems added", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.MaxItems = ptr.To[int64](8) }, "status", "conditions"),
			crdsafety.KindBoundsTightened, "status.conditions", prefix + "status.conditions: maxItems 8 added"},
		{"minProperties added", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.MinProperties = ptr.To[int64](2) }, "spec"),
			crdsafety.KindBoundsTightened, "spec", prefix + "spec: minProperties 2 added"},
		{"maxProperties lowered", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.MaxProperties = ptr.To[int64](4) }, "spec", "labels"),
			crdsafety.KindBoundsTightened, "spec.labels", prefix + "spec.labels: maxProperties lowered from 16 to 4"},
		{"pattern added", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Pattern = "^[a-z0-9-]+$" }, "spec", "region"),
			crdsafety.KindPatternChanged, "spec.region", prefix + `spec.region: pattern "^[a-z0-9-]+$" added`},
		{"pattern changed", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Pattern = "^[A-Z][A-Za-z]*$" }, "status", "conditions", "*", "reason"),
			crdsafety.KindPatternChanged, "status.conditions[*].reason",
			prefix + `status.conditions[*].reason: pattern changed from "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$" to "^[A-Z][A-Za-z]*$"`},
		{"map value constraint", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.MaxLength = ptr.To[int64](10) }, "spec", "labels", "*"),
			crdsafety.KindBoundsTightened, "spec.labels[*]", prefix + "spec.labels[*]: maxLength 10 added"},
		{"list type made stricter", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.XListType = ptr.To("set") }, "spec", "tags"),
			crdsafety.KindListTypeChanged, "spec.tags", prefix + "spec.tags: x-kubernetes-list-type changed from atomic to set"},
		{"validation rule added", onV1(func(s *apiextensionsv1.JSONSchemaProps) {
			s.XValidations = apiextensionsv1.ValidationRules{{Rule: "self.intervalSeconds % 5 == 0"}}
		}, "spec"),
			crdsafety.KindValidationRuleAdded, "spec", prefix + "spec: validation rule added: self.intervalSeconds % 5 == 0"},
		{"unknown fields no longer preserved", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.XPreserveUnknownFields = nil }, "spec", "extra"),
			crdsafety.KindFieldRemoved, "spec.extra", prefix + "spec.extra: unknown fields are no longer preserved (x-kubernetes-preserve-unknown-fields removed); they would be pruned"},
		{"scope changed", func(_ testing.TB, _, new *apiextensionsv1.CustomResourceDefinition) {
			new.Spec.Scope = apiextensionsv1.ClusterScoped
		}, crdsafety.KindScopeChanged, "", "CRD beacons.lighthouse.ferry.dev: scope changed from Namespaced to Cluster"},
		{"served version removed", func(_ testing.TB, _, new *apiextensionsv1.CustomResourceDefinition) {
			removeVersion(new, "v1beta1")
		}, crdsafety.KindServedVersionRemoved, "", "CRD beacons.lighthouse.ferry.dev: served version v1beta1 removed"},
		{"served version no longer served", func(_ testing.TB, _, new *apiextensionsv1.CustomResourceDefinition) {
			new.Spec.Versions[1].Served = false
		}, crdsafety.KindServedVersionUnserved, "", "CRD beacons.lighthouse.ferry.dev: served version v1beta1 is no longer served"},
		{"stored version removed", func(_ testing.TB, old, new *apiextensionsv1.CustomResourceDefinition) {
			old.Status.StoredVersions = []string{"v1beta1", "v1"}
			removeVersion(new, "v1beta1")
		}, crdsafety.KindStoredVersionRemoved, "",
			"CRD beacons.lighthouse.ferry.dev: version v1beta1 is listed in status.storedVersions but is missing from the new spec.versions; objects stored as v1beta1 could no longer be read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := extended(t, live(t))
			new := old.DeepCopy()
			new.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
			tc.change(t, old, new)
			got := crdsafety.Diff(old, new)
			if len(got) != 1 {
				t.Fatalf("Diff found %d findings, want 1:\n%s", len(got), strings.Join(messages(got), "\n"))
			}
			f := got[0]
			if f.Message != tc.want {
				t.Errorf("message:\n got %s\nwant %s", f.Message, tc.want)
			}
			if f.Kind != tc.kind || f.Field != tc.field || f.CRD != "beacons.lighthouse.ferry.dev" || !f.Blocking() {
				t.Errorf("finding = %+v, want kind %s field %q, blocking", f, tc.kind, tc.field)
			}
		})
	}
}

// extended adds to the v1 schema the kinds of fields the sample lacks: a
// number, a nullable string, an array of strings, a map with bounds and an
// object that preserves unknown fields.
func extended(t testing.TB, crd *apiextensionsv1.CustomResourceDefinition) *apiextensionsv1.CustomResourceDefinition {
	edit(t, crd, "v1", func(s *apiextensionsv1.JSONSchemaProps) {
		s.Properties["ratio"] = apiextensionsv1.JSONSchemaProps{Type: "number"}
		m := s.Properties["message"]
		m.Nullable = true
		s.Properties["message"] = m
		s.Properties["tags"] = apiextensionsv1.JSONSchemaProps{Type: "array",
			Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}}
		s.Properties["labels"] = apiextensionsv1.JSONSchemaProps{Type: "object", MaxProperties: ptr.To[int64](16),
			AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}}
		s.Properties["extra"] = apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptr.To(true)}
	}, "spec")
	return crd
}

func TestDiffAcceptsCompatibleChanges(t *testing.T) {
	type change func(t testing.TB, new *apiextensionsv1.CustomResourceDefinition)
	onV1 := func(fn func(*apiextensionsv1.JSONSchemaProps), path ...string) change {
		return func(t testing.TB, new *apiextensionsv1.CustomResourceDefinition) { edit(t, new, "v1", fn, path...) }
	}
	cases := []struct {
		name   string
		change change
	}{
		{"no change", func(testing.TB, *apiextensionsv1.CustomResourceDefinition) {}},
		{"new optional field", onV1(func(s *apiextensionsv1.JSONSchemaProps) {
			s.Properties["color"] = apiextensionsv1.JSONSchemaProps{Type: "string", Enum: enumOf("red"), MaxLength: ptr.To[int64](8)}
		}, "spec")},
		{"new optional object with required fields", onV1(func(s *apiextensionsv1.JSONSchemaProps) {
			s.Properties["schedule"] = apiextensionsv1.JSONSchemaProps{Type: "object", Required: []string{"cron"},
				Properties: map[string]apiextensionsv1.JSONSchemaProps{"cron": {Type: "string"}}}
		}, "spec")},
		{"widened enum", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Enum = enumOf("Steady", "Pulse", "Strobe", "Flash") }, "spec", "pattern")},
		{"reordered enum", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Enum = enumOf("Strobe", "Steady", "Pulse") }, "spec", "pattern")},
		{"enum removed", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Enum = nil }, "spec", "pattern")},
		{"minimum lowered and maximum raised", onV1(func(s *apiextensionsv1.JSONSchemaProps) {
			s.Minimum, s.Maximum = ptr.To(1.0), ptr.To(86400.0)
		}, "spec", "intervalSeconds")},
		{"bounds removed", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.MinLength, s.MaxLength = nil, nil }, "spec", "target")},
		{"maxLength raised", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.MaxLength = ptr.To[int64](1024) }, "spec", "message")},
		{"pattern removed", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Pattern = "" }, "status", "conditions", "*", "reason")},
		{"integer widened to number", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Type = "number" }, "spec", "intervalSeconds")},
		{"new required field with a default", onV1(func(s *apiextensionsv1.JSONSchemaProps) {
			r := s.Properties["region"]
			r.Default = &apiextensionsv1.JSON{Raw: []byte(`"eu-west"`)}
			s.Properties["region"] = r
			s.Required = append(s.Required, "region")
		}, "spec")},
		{"field made optional", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Required = nil }, "spec")},
		{"made nullable", onV1(func(s *apiextensionsv1.JSONSchemaProps) { s.Nullable = true }, "spec", "region")},
		{"description and default changed", onV1(func(s *apiextensionsv1.JSONSchemaProps) {
			s.Description = "Seconds between announcements; see the manual."
			s.Default = &apiextensionsv1.JSON{Raw: []byte("60")}
		}, "spec", "intervalSeconds")},
		{"new version added", func(_ testing.TB, new *apiextensionsv1.CustomResourceDefinition) {
			v := *new.Spec.Versions[0].DeepCopy()
			v.Name, v.Storage = "v2", false
			new.Spec.Versions = append(new.Spec.Versions, v)
		}},
		{"unserved version added", func(_ testing.TB, new *apiextensionsv1.CustomResourceDefinition) {
			new.Spec.Versions = append(new.Spec.Versions, apiextensionsv1.CustomResourceDefinitionVersion{
				Name: "v1alpha1", Served: false, Storage: false, Schema: new.Spec.Versions[1].Schema.DeepCopy()})
		}},
		{"printer column added", func(_ testing.TB, new *apiextensionsv1.CustomResourceDefinition) {
			new.Spec.Versions[0].AdditionalPrinterColumns = append(new.Spec.Versions[0].AdditionalPrinterColumns,
				apiextensionsv1.CustomResourceColumnDefinition{Name: "Message", Type: "string", JSONPath: ".spec.message"})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := extended(t, live(t))
			new := old.DeepCopy()
			tc.change(t, new)
			if got := crdsafety.Diff(old, new); len(got) != 0 {
				t.Fatalf("Diff found:\n%s", strings.Join(messages(got), "\n"))
			}
		})
	}
}

// TestDiffRatchets: a constraint the old schema already had is not a change.
func TestDiffRatchets(t *testing.T) {
	cases := []struct {
		name string
		both func(*apiextensionsv1.JSONSchemaProps)
		path []string
	}{
		{"field already required", func(s *apiextensionsv1.JSONSchemaProps) { s.Required = append(s.Required, "region") }, []string{"spec"}},
		{"enum already present", func(s *apiextensionsv1.JSONSchemaProps) { s.Enum = enumOf("eu", "us") }, []string{"spec", "region"}},
		{"pattern already present", func(s *apiextensionsv1.JSONSchemaProps) { s.Pattern = "^[a-z]+$" }, []string{"spec", "region"}},
		{"bounds already present", func(s *apiextensionsv1.JSONSchemaProps) {
			s.Minimum, s.ExclusiveMinimum, s.MultipleOf = ptr.To(10.0), true, ptr.To(5.0)
		}, []string{"spec", "intervalSeconds"}},
		{"rule already present", func(s *apiextensionsv1.JSONSchemaProps) {
			s.XValidations = apiextensionsv1.ValidationRules{{Rule: "size(self.target) > 0"}}
		}, []string{"spec"}},
		{"list type already set", func(s *apiextensionsv1.JSONSchemaProps) { s.XListType = ptr.To("set") }, []string{"spec", "tags"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := extended(t, live(t))
			edit(t, old, "v1", tc.both, tc.path...)
			new := old.DeepCopy()
			// The new schema is otherwise loosened: a description changes.
			edit(t, new, "v1", func(s *apiextensionsv1.JSONSchemaProps) { s.Description = "changed" }, tc.path...)
			if got := crdsafety.Diff(old, new); len(got) != 0 {
				t.Fatalf("Diff found:\n%s", strings.Join(messages(got), "\n"))
			}
		})
	}
}

func TestDiffNamesEveryChangedVersionAndField(t *testing.T) {
	old := live(t)
	new := old.DeepCopy()
	for _, v := range []string{"v1", "v1beta1"} {
		edit(t, new, v, func(s *apiextensionsv1.JSONSchemaProps) { s.Maximum = ptr.To(60.0) }, "spec", "intervalSeconds")
	}
	edit(t, new, "v1", func(s *apiextensionsv1.JSONSchemaProps) { delete(s.Properties, "pattern") }, "spec")
	got := messages(crdsafety.Diff(old, new))
	want := []string{
		"CRD beacons.lighthouse.ferry.dev version v1: field spec.intervalSeconds: maximum lowered from 3600 to 60",
		"CRD beacons.lighthouse.ferry.dev version v1: field spec.pattern: field removed",
		"CRD beacons.lighthouse.ferry.dev version v1beta1: field spec.intervalSeconds: maximum lowered from 3600 to 60",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Diff:\n got %q\nwant %q", got, want)
	}
}

func TestDiffOfTheLighthouseBundles(t *testing.T) {
	for _, step := range [][2]string{{"1.0.0", "1.1.0"}, {"1.1.1", "1.2.0"}, {"1.2.0", "1.3.0"}, {"1.3.0", "1.4.0"}} {
		old, new := beaconCRD(t, step[0]), beaconCRD(t, step[1])
		old.Status.StoredVersions = []string{"v1beta1"}
		if got := crdsafety.Diff(old, new); len(got) != 0 {
			t.Errorf("%s -> %s:\n%s", step[0], step[1], strings.Join(messages(got), "\n"))
		}
	}
	if got := crdsafety.Diff(nil, beaconCRD(t, "1.3.0")); got != nil {
		t.Errorf("Diff(nil, new) = %v, want nil", got)
	}
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]crdsafety.Policy{"": crdsafety.PolicyStrict, "Strict": crdsafety.PolicyStrict, "Warn": crdsafety.PolicyWarn, "None": crdsafety.PolicyNone} {
		if got, err := crdsafety.ParsePolicy(in); err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := crdsafety.ParsePolicy("strict"); err == nil {
		t.Error("ParsePolicy(\"strict\") succeeded, want an error")
	}
	if _, err := (&crdsafety.Checker{}).Check(t.Context(), live(t), live(t), "Sometimes"); err == nil {
		t.Error("Check with an unknown policy succeeded, want an error")
	}
}
