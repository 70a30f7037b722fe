package catalog

import (
	"reflect"
	"strings"
	"testing"

	jsonv1 "github.com/go-json-experiment/json/v1"
)

// quickDocCases are documents as catalog tools write them and as they may
// not: each is read by quickFBCBlob as jsonv1.Unmarshal reads it, or left
// to the decoder (quick says which is expected).
var quickDocCases = []struct {
	name  string
	doc   string
	quick bool
}{
	{name: "package", doc: `{"schema":"olm.package","name":"p","defaultChannel":"stable","description":"A package.","icon":{"base64data":"iVBO","mediatype":"image/png"}}`, quick: true},
	{name: "channel", doc: `{"schema":"olm.channel","package":"p","name":"stable","entries":[{"name":"p.v1","skips":["a"]},{"name":"p.v2","replaces":"p.v1"}]}`, quick: true},
	{name: "bundle", doc: `{"schema":"olm.bundle","name":"p.v1","package":"p","image":"quay.io/p:v1","properties":[{"type":"olm.package","value":{"packageName":"p","version":"1.0.0"}},{"type":"olm.bundle.object","value":{"data":"eyJhIjoxfQ=="}}],"relatedImages":[{"name":"x","image":"quay.io/x"}]}`, quick: true},
	{name: "spaced", doc: " {\n \"schema\" : \"olm.bundle\" ,\n \"properties\" : [ { \"type\" : \"olm.bundle.object\" , \"value\" : { \"data\" : \"eyJhIjoxfQ==\" } } ] }\n", quick: true},
	{name: "empty properties", doc: `{"schema":"olm.bundle","properties":[]}`, quick: true},
	{name: "empty object", doc: `{}`, quick: true},
	{name: "empty property", doc: `{"properties":[{}]}`, quick: true},
	{name: "property without value", doc: `{"properties":[{"type":"olm.gvk"}]}`, quick: true},
	{name: "property value null", doc: `{"properties":[{"type":"olm.gvk","value":null}]}`, quick: true},
	{name: "unknown names skipped", doc: `{"schema":"x","extra":{"a":[1,2,{"b":"}"}]},"more":-1.5e3,"t":true,"n":null,"s":"x"}`, quick: true},
	{name: "unknown property name", doc: `{"properties":[{"type":"a","value":1,"note":"x"}]}`, quick: true},
	{name: "unicode string", doc: `{"schema":"olm.package","name":"p","description":"Ünïcødé ✓"}`, quick: true},
	{name: "icon null", doc: `{"schema":"olm.package","name":"p","icon":null}`, quick: true},
	{name: "escaped string", doc: `{"schema":"olm.package","name":"p","description":"a\nb"}`},
	{name: "escaped key", doc: `{"sch\u0065ma":"olm.package"}`},
	{name: "name in another case", doc: `{"Schema":"olm.package"}`},
	{name: "property name in another case", doc: `{"properties":[{"Type":"olm.gvk","value":{}}]}`},
	{name: "non-ASCII name", doc: `{"ſchema":"olm.package"}`},
	{name: "duplicate name", doc: `{"schema":"a","schema":"b"}`},
	{name: "duplicate property value", doc: `{"properties":[{"type":"a","value":1,"value":2}]}`},
	{name: "properties null", doc: `{"properties":null}`},
	{name: "number for a string", doc: `{"schema":1}`},
	{name: "null for a string", doc: `{"schema":null}`},
	{name: "object in another form", doc: `{"properties":[{"type":"olm.bundle.object","value":{"ref":"x"}}]}`},
	{name: "object data with a tab", doc: "{\"properties\":[{\"type\":\"olm.bundle.object\",\"value\":{\"data\":\"eyJh\tIjoxfQ==\"}}]}"},
	{name: "object data not ASCII", doc: `{"properties":[{"type":"olm.bundle.object","value":{"data":"eyJhé"}}]}`},
	{name: "invalid property value", doc: `{"properties":[{"type":"olm.gvk","value":{"a":}}]}`},
	{name: "invalid unknown value", doc: `{"extra":[1,,2]}`},
	{name: "trailing comma", doc: `{"schema":"a",}`},
	{name: "missing colon", doc: `{"schema" "a"}`},
	{name: "trailing text", doc: `{"schema":"a"} x`},
	{name: "not an object", doc: `["schema"]`},
	{name: "control character", doc: "{\"schema\":\"a\x01\"}"},
	{name: "invalid UTF-8", doc: "{\"schema\":\"a\xff\"}"},
	{name: "duplicate entries", doc: `{"schema":"olm.channel","entries":[{"name":"a"}],"entries":[{"name":"b"}]}`},
	{name: "duplicate icon", doc: `{"schema":"olm.package","icon":null,"icon":{"base64data":"x","mediatype":"y"}}`},
	{name: "duplicate relatedImages", doc: `{"relatedImages":[],"relatedImages":[{"name":"a","image":"b"}]}`},
	{name: "unknown value nested deep", doc: `{"schema":"x","extra":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`},
	{name: "property value nested deep", doc: `{"properties":[{"type":"a","value":` + strings.Repeat(`{"a":`, 9998) + `1` + strings.Repeat("}", 9998) + `}]}`},
	{name: "entries nested deep", doc: `{"entries":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`},
	{name: "nested within the bound", doc: `{"schema":"x","extra":` + strings.Repeat("[", 60) + strings.Repeat("]", 60) + `}`, quick: true},
	{name: "duplicate names in a value", doc: `{"properties":[{"type":"olm.gvk","value":{"a":1,"a":2}}]}`},
}

// TestQuickFBCBlob: what quickFBCBlob reads is what the decoder reads, and
// it leaves to the decoder what it should.
func TestQuickFBCBlob(t *testing.T) {
	for _, tc := range quickDocCases {
		t.Run(tc.name, func(t *testing.T) {
			var quick fbcBlob
			ok := quickFBCBlob([]byte(tc.doc), &quick)
			if ok != tc.quick {
				t.Fatalf("read quickly: %v, want %v", ok, tc.quick)
			}
			if ok {
				checkQuickMatchesDecoder(t, []byte(tc.doc), &quick)
			}
		})
	}
}

// FuzzQuickFBCBlob: whatever quickFBCBlob reads, the decoder reads the
// same, without an error.
func FuzzQuickFBCBlob(f *testing.F) {
	for _, tc := range quickDocCases {
		f.Add([]byte(tc.doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var quick fbcBlob
		if quickFBCBlob(doc, &quick) {
			checkQuickMatchesDecoder(t, doc, &quick)
		}
	})
}

func checkQuickMatchesDecoder(t *testing.T, doc []byte, quick *fbcBlob) {
	t.Helper()
	var decoded fbcBlob
	if err := jsonv1.Unmarshal(doc, &decoded); err != nil {
		t.Fatalf("read quickly, but the decoder refuses %q: %v", doc, err)
	}
	if !reflect.DeepEqual(*quick, decoded) {
		t.Fatalf("%q read quickly as\n%+v\nthe decoder reads\n%+v", doc, *quick, decoded)
	}
}

// TestPrintableASCII: every byte outside 0x20..0x7e is found, at every
// position of a word and after it.
func TestPrintableASCII(t *testing.T) {
	base := []byte(strings.Repeat("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= ~", 2))
	if !printableASCII(base) {
		t.Fatal("printable text refused")
	}
	for _, c := range []byte{0x00, 0x01, 0x09, 0x0a, 0x1f, 0x7f, 0x80, 0xc3, 0xff} {
		for pos := range 19 {
			b := append([]byte(nil), base[:19]...)
			b[pos] = c
			if printableASCII(b) {
				t.Errorf("byte %#x at %d not found", c, pos)
			}
		}
	}
	for _, c := range []byte{0x20, 0x21, 0x5c, 0x7e} {
		b := append([]byte(nil), base[:19]...)
		b[3] = c
		if !printableASCII(b) {
			t.Errorf("printable byte %#x refused", c)
		}
	}
}
