package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"
)

func TestRegistryJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty stays empty", "", ""},
		{"indented object is compacted", "{\n    \"group\": \"a.io\",\n    \"kind\": \"A\",\n    \"version\": \"v1\"\n}", `{"group":"a.io","kind":"A","version":"v1"}`},
		{"keys are sorted, nested too", `{"version":"v1","kind":"A","group":"a.io","x":{"b":1,"a":[{"d":1,"c":2}]}}`, `{"group":"a.io","kind":"A","version":"v1","x":{"a":[{"c":2,"d":1}],"b":1}}`},
		{"HTML characters stay literal", `{"packageName":"p","versionRange":"\u003e=1.0.0 \u003c2.0.0 \u0026"}`, `{"packageName":"p","versionRange":">=1.0.0 <2.0.0 &"}`},
		{"numbers go through float64", `{"a":1.0,"b":1e3,"c":9007199254740993,"d":4.10}`, `{"a":1,"b":1000,"c":9007199254740992,"d":4.1}`},
		{"escapes are re-encoded", `"caf\u00e9\t\u2028"`, `"café\t\u2028"`},
		{"scalar values", ` "4.12" `, `"4.12"`},
		{"null", `null`, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RegistryJSON(json.RawMessage(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("RegistryJSON(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
	if _, err := RegistryJSON(json.RawMessage(`{"a":`)); err == nil {
		t.Error("RegistryJSON accepted a truncated value")
	}
}

// TestRegistryForm loads a catalog written as `opm render` writes it
// (indented JSON) and checks the properties and dependencies api.Registry
// will send, byte for byte.
func TestRegistryForm(t *testing.T) {
	bundle := `{
    "schema": "olm.bundle",
    "name": "foo.v1.0.0",
    "package": "foo",
    "image": "quay.io/x/foo:v1.0.0",
    "properties": [
        {
            "type": "olm.package",
            "value": {
                "packageName": "foo",
                "version": "1.0.0"
            }
        },
        {
            "type": "olm.gvk.required",
            "value": {
                "version": "v1",
                "kind": "Bar",
                "group": "bar.io"
            }
        },
        {
            "type": "olm.package.required",
            "value": {
                "versionRange": ">=1.0.0 <2.0.0",
                "packageName": "bar"
            }
        },
        {
            "type": "example.opaque",
            "value": [1.50, "a&b"]
        }
    ]
}
`
	fsys := fstest.MapFS{"foo/catalog.json": {Data: []byte(docs(fbcPkg("foo", "stable"), fbcCh("foo", "stable", entry("foo.v1.0.0"))) + bundle)}}
	c, err := Load(context.Background(), []Source{{Name: "cat", FS: fsys, Format: FormatFBC}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Problems) > 0 {
		t.Fatalf("problems: %v", c.Problems)
	}
	b := c.Bundle("foo", "foo.v1.0.0")
	render := func(ps []Property) string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Type+"="+string(p.Value))
		}
		return strings.Join(out, "\n")
	}
	wantProps := strings.Join([]string{
		`olm.package={"packageName":"foo","version":"1.0.0"}`,
		`olm.gvk.required={"group":"bar.io","kind":"Bar","version":"v1"}`,
		`olm.package.required={"packageName":"bar","versionRange":">=1.0.0 <2.0.0"}`,
		`example.opaque=[1.5,"a&b"]`,
	}, "\n")
	if got := render(b.RegistryProperties()); got != wantProps {
		t.Errorf("RegistryProperties:\n%s\nwant\n%s", got, wantProps)
	}
	wantDeps := strings.Join([]string{
		`olm.gvk={"group":"bar.io","kind":"Bar","version":"v1"}`,
		`olm.package={"packageName":"bar","version":">=1.0.0 <2.0.0"}`,
	}, "\n")
	if got := render(b.RegistryDependencies()); got != wantDeps {
		t.Errorf("RegistryDependencies:\n%s\nwant\n%s", got, wantDeps)
	}
	// The model keeps the values as the catalog spells them.
	if v := string(b.Properties[1].Value); !strings.Contains(v, "\n") {
		t.Errorf("Properties[1] = %s, want the value as written", v)
	}
}

// TestYAMLBlockScalarAtEndOfFile: a block scalar that ends a file keeps the
// newline YAML's clip chomping keeps, whether or not the file ends with one,
// as operator-registry's line-framed reader decodes it.
func TestYAMLBlockScalarAtEndOfFile(t *testing.T) {
	head := docs(fbcPkg("foo", "stable"), fbcCh("foo", "stable", entry("foo.v1.0.0")), fbcB("foo", "foo.v1.0.0", "1.0.0"))
	dep := "---\nschema: olm.deprecations\npackage: foo\nentries:\n- reference:\n    schema: olm.package\n  message: %s\n    Use bar instead.\n    It is maintained."
	tests := []struct {
		name, indicator, tail, want string
	}{
		{"clip, final newline", "|", "\n", "Use bar instead.\nIt is maintained.\n"},
		{"clip, no final newline", "|", "", "Use bar instead.\nIt is maintained.\n"},
		{"clip, CRLF, no final newline", "|", "", "Use bar instead.\nIt is maintained.\n"},
		{"strip, no final newline", "|-", "", "Use bar instead.\nIt is maintained."},
		{"keep, trailing blank lines", "|+", "\n\n", "Use bar instead.\nIt is maintained.\n\n"},
		{"folded, no final newline", ">", "", "Use bar instead. It is maintained.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := strings.Replace(dep, "%s", tt.indicator, 1) + tt.tail
			if strings.Contains(tt.name, "CRLF") {
				y = strings.ReplaceAll(y, "\n", "\r\n")
			}
			fsys := fstest.MapFS{"foo/catalog.json": {Data: []byte(head)}, "foo/deprecations.yaml": {Data: []byte(y)}}
			c, err := Load(context.Background(), []Source{{Name: "cat", FS: fsys, Format: FormatFBC}})
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Problems) > 0 {
				t.Fatalf("problems: %v", c.Problems)
			}
			d := c.Package("foo").Deprecation
			if d == nil || d.Message != tt.want {
				t.Fatalf("deprecation = %+v, want message %q", d, tt.want)
			}
		})
	}
}

// FuzzRegistryJSON: any valid JSON value has a wire form that is valid,
// compact JSON, means the same once numbers are read as float64, and is its
// own wire form; invalid JSON is an error, never a panic.
func FuzzRegistryJSON(f *testing.F) {
	f.Add([]byte("{\n    \"b\": 1.50,\n    \"a\": \"\\u003c\"\n}"))
	f.Add([]byte(`[1e400]`))
	f.Add([]byte(`"\ud800"`))
	f.Add([]byte(`{"a":`))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := RegistryJSON(in)
		if !json.Valid(in) {
			if err == nil && len(in) > 0 {
				t.Fatalf("RegistryJSON(%q) accepted invalid JSON", in)
			}
			return
		}
		if err != nil {
			// Numbers beyond float64 fail to decode, upstream too.
			return
		}
		if !json.Valid(got) {
			t.Fatalf("RegistryJSON(%q) = %q, not JSON", in, got)
		}
		again, err := RegistryJSON(got)
		if err != nil || string(again) != string(got) {
			t.Fatalf("RegistryJSON is not idempotent: %q -> %q -> %q (%v)", in, got, again, err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, got); err != nil || compact.String() != string(got) {
			t.Fatalf("RegistryJSON(%q) = %q is not compact", in, got)
		}
	})
}
