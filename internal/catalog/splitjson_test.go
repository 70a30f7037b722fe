package catalog

import (
	"io"
	"slices"
	"testing"
)

// TestSplitJSON: a stream of JSON documents is split at the end of each
// value, wherever brackets, quotes and backslashes stand inside strings.
func TestSplitJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "one object", in: `{"a":1}`, want: []string{`{"a":1}`}},
		{name: "several, spaced", in: " {\"a\":1}\n\t[1,2]\r\n{}  ", want: []string{`{"a":1}`, `[1,2]`, `{}`}},
		{name: "brackets in strings", in: `{"a":"}]{["}{"b":"]"}`, want: []string{`{"a":"}]{["}`, `{"b":"]"}`}},
		{name: "escaped quote", in: `{"a":"x\"}"}{"b":2}`, want: []string{`{"a":"x\"}"}`, `{"b":2}`}},
		{name: "escaped backslash before the closing quote", in: `{"a":"x\\"}{"b":2}`, want: []string{`{"a":"x\\"}`, `{"b":2}`}},
		{name: "three backslashes and a quote", in: `{"a":"\\\"}"}[]`, want: []string{`{"a":"\\\"}"}`, `[]`}},
		{name: "escaped quote first", in: `{"\"":"\"\""}`, want: []string{`{"\"":"\"\""}`}},
		{name: "empty strings", in: `{"":""}{"a":["",""]}`, want: []string{`{"":""}`, `{"a":["",""]}`}},
		{name: "nested", in: `{"a":{"b":[{"c":"}"}]}}`, want: []string{`{"a":{"b":[{"c":"}"}]}}`}},
		{name: "unterminated string", in: `{"a":1}{"b":"x}`, want: []string{`{"a":1}`}, wantErr: true},
		{name: "string ending in a backslash", in: `{"a":"x\"}`, wantErr: true},
		{name: "unterminated object", in: `{"a":{}`, wantErr: true},
		{name: "not a document", in: `{"a":1} 42`, want: []string{`{"a":1}`}, wantErr: true},
		{name: "empty", in: " \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans, _, err := splitJSON([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want an error: %v", err, tt.wantErr)
			}
			var got []string
			for _, s := range spans {
				got = append(got, tt.in[s.off:s.off+s.n])
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("documents %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzScanJSONValue: the end of a value is where a plain scan, one byte at
// a time, finds it.
func FuzzScanJSONValue(f *testing.F) {
	for _, s := range []string{`{"a":"x\"}"}`, `{"a":"x\\"}`, `[{"\\\\\"":"]"}]`, `{"a":"b`, `{"a":"\`, `[]`, `{"":[""]}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || (data[0] != '{' && data[0] != '[') {
			return
		}
		end, err := scanJSONValue(data, 0)
		wantEnd, wantErr := scanJSONValueBytewise(data)
		if end != wantEnd || (err == nil) != (wantErr == nil) {
			t.Fatalf("scanJSONValue(%q) = %d, %v; byte by byte %d, %v", data, end, err, wantEnd, wantErr)
		}
	})
}

// scanJSONValueBytewise is scanJSONValue one byte at a time, the reference.
func scanJSONValueBytewise(data []byte) (int, error) {
	depth := 0
	for j := 0; j < len(data); j++ {
		switch data[j] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		case '"':
			for j++; j < len(data) && data[j] != '"'; j++ {
				if data[j] == '\\' {
					j++
				}
			}
		}
	}
	return len(data), io.ErrUnexpectedEOF
}
