package catalog

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"testing"

	jsonv1 "github.com/go-json-experiment/json/v1"
)

// TestPlainObjectData: the quick read of {"data":"<base64>"} answers only
// for values the JSON decoder reads the same way, and decodeBundleObjectData
// gives the same object either way.
func TestPlainObjectData(t *testing.T) {
	obj := base64.StdEncoding.EncodeToString([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`))
	tests := []struct {
		name  string
		value string
		quick bool
	}{
		{name: "as catalog tools write it", value: `{"data":"` + obj + `"}`, quick: true},
		{name: "spaces and newlines between tokens", value: " {\n  \"data\" : \"" + obj + "\"\n}\n", quick: true},
		{name: "an escaped character", value: `{"data":"` + fmt.Sprintf(`\u%04x`, obj[0]) + obj[1:] + `"}`},
		{name: "a tab in the string", value: `{"data":"` + obj[:4] + "\t" + obj[4:] + `"}`, quick: true},
		{name: "another key too", value: `{"data":"` + obj + `","ref":""}`},
		{name: "another key first", value: `{"ref":"","data":"` + obj + `"}`},
		{name: "the key in capitals", value: `{"DATA":"` + obj + `"}`},
		{name: "a newline in the string", value: `{"data":"` + obj[:4] + "\n" + obj[4:] + `"}`},
		{name: "empty data", value: `{"data":""}`},
		{name: "no closing brace", value: `{"data":"` + obj + `"`},
		{name: "something after the value", value: `{"data":"` + obj + `"} x`},
		{name: "not an object", value: `"` + obj + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, quick := plainObjectData([]byte(tt.value))
			if quick != tt.quick {
				t.Fatalf("quick read %v, want %v", quick, tt.quick)
			}
			var o struct {
				Data string `json:"data"`
			}
			jsonErr := jsonv1.Unmarshal([]byte(tt.value), &o)
			// Of a valid value (values come from decoded documents), the
			// quick read is the string's value.
			if quick && jsonErr == nil && !bytes.Equal(data, []byte(o.Data)) {
				t.Fatalf("quick read %q; the JSON decoder read %q (error %v)", data, o.Data, jsonErr)
			}
			m, got, err := decodeBundleObjectData([]byte(tt.value), nil)
			// Decoded into a scratch buffer, the same object.
			scratch := make([]byte, 0, 8)
			if ms, _, errs := decodeBundleObjectData([]byte(tt.value), &scratch); (errs == nil) != (err == nil) || ms.Kind != m.Kind || ms.Name != m.Name || !bytes.Equal(ms.JSON, m.JSON) {
				t.Errorf("with a scratch buffer: %s %q (error %v), without: %s %q (error %v)", ms.Kind, ms.Name, errs, m.Kind, m.Name, err)
			}
			if jsonErr != nil || o.Data == "" {
				if err == nil {
					t.Fatalf("decoded %v from a value the JSON decoder refuses or that has no data", m)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind != "ConfigMap" || m.Name != "c" || string(got) != o.Data {
				t.Errorf("decoded %s %q with data %q, want ConfigMap \"c\" with %q", m.Kind, m.Name, got, o.Data)
			}
		})
	}
}
