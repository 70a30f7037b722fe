package catalog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// quickFBCBlob reads a catalog document into b without running the JSON
// decoder over the bundle objects' base64 text, which is most of a
// catalog's bytes. It reads only the documents every catalog tool writes:
// an object whose known names are spelled exactly and given once, whose
// strings hold no escape, whose olm.bundle.object values are
// {"data":"<base64>"}; every other value it hands to the decoder or
// checks with it. It returns false, with b in any state, for anything
// else, and the caller decodes the document as before: what it reads, it
// reads as jsonv1.Unmarshal would (FuzzQuickFBCBlob holds it to that).
func quickFBCBlob(js []byte, b *fbcBlob) bool {
	r := quickReader{data: js}
	if !r.token('{') {
		return false
	}
	if r.token('}') {
		return r.end()
	}
	var seen []string
	for {
		key, ok := r.name(fbcBlobFields, &seen)
		if !ok {
			return false
		}
		switch key {
		case "schema":
			ok = r.stringField(&b.Schema)
		case "package":
			ok = r.stringField(&b.Package)
		case "name":
			ok = r.stringField(&b.Name)
		case "defaultChannel":
			ok = r.stringField(&b.DefaultChannel)
		case "description":
			ok = r.stringField(&b.Description)
		case "image":
			ok = r.stringField(&b.Image)
		case "properties":
			ok = r.properties(&b.Properties)
		case "icon":
			ok = r.decoded(&b.Icon)
		case "entries":
			var v []byte
			if v, ok = r.checkedValue(); ok {
				b.Entries = json.RawMessage(bytes.Clone(v))
			}
		case "relatedImages":
			ok = r.decoded(&b.RelatedImages)
		default:
			_, ok = r.checkedValue()
		}
		if !ok {
			return false
		}
		if r.token(',') {
			continue
		}
		if !r.token('}') || !r.end() {
			return false
		}
		if b.Schema != SchemaBundle {
			// Only a bundle's objects are read and dropped while its
			// document is recorded; elsewhere they are kept.
			for i, p := range b.Properties {
				if p.Type == PropertyBundleObject && p.Value != nil {
					b.Properties[i].Value = bytes.Clone(p.Value)
				}
			}
		}
		return true
	}
}

// The JSON names of fbcBlob's and Property's fields: a name that differs
// from one of them only in case would set that field in the decoder.
var (
	fbcBlobFields  = []string{"schema", "package", "name", "defaultChannel", "description", "icon", "entries", "image", "properties", "relatedImages"}
	propertyFields = []string{"type", "value"}
)

// foldsToField reports whether key could name one of fields in a decoder
// matching names without regard to case: a key with non-ASCII letters is
// counted as one, since Unicode folding maps some of them to ASCII.
func foldsToField(key string, fields []string) bool {
	for i := 0; i < len(key); i++ {
		if key[i] >= utf8.RuneSelf {
			return true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(key, f) {
			return true
		}
	}
	return false
}

// quickMaxDepth bounds the nesting of a value quickFBCBlob reads: far
// deeper than catalogs nest, far below the decoder's own bound.
const quickMaxDepth = 64

// quickReader reads JSON tokens from data at i.
type quickReader struct {
	data []byte
	i    int
}

func (r *quickReader) space() {
	for r.i < len(r.data) && isJSONSpace(r.data[r.i]) {
		r.i++
	}
}

// token consumes c after optional whitespace.
func (r *quickReader) token(c byte) bool {
	r.space()
	if r.i < len(r.data) && r.data[r.i] == c {
		r.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (r *quickReader) end() bool {
	r.space()
	return r.i == len(r.data)
}

// name reads an object member's name and its colon. Each of fields may be
// given once, and a name that matches one of them only without regard to
// case is refused: the decoder would set that field from it.
func (r *quickReader) name(fields []string, seen *[]string) (string, bool) {
	key, ok := r.plainString()
	if !ok || !r.token(':') {
		return "", false
	}
	if !slices.Contains(fields, key) {
		return key, !foldsToField(key, fields)
	}
	if slices.Contains(*seen, key) {
		return "", false
	}
	*seen = append(*seen, key)
	return key, true
}

// plainString reads a string without escapes, control characters or
// invalid UTF-8: its bytes are its value.
func (r *quickReader) plainString() (string, bool) {
	if !r.token('"') {
		return "", false
	}
	end := bytes.IndexByte(r.data[r.i:], '"')
	if end < 0 {
		return "", false
	}
	s := r.data[r.i : r.i+end]
	if bytes.IndexByte(s, '\\') >= 0 || !utf8.Valid(s) || hasControl(s) {
		return "", false
	}
	r.i += end + 1
	return string(s), true
}

// stringField reads a plain string into dst.
func (r *quickReader) stringField(dst *string) bool {
	s, ok := r.plainString()
	*dst = s
	return ok
}

// value returns the next value's bytes, found by its brackets and quotes
// only: the caller checks it.
func (r *quickReader) value() ([]byte, bool) {
	r.space()
	if r.i == len(r.data) {
		return nil, false
	}
	start := r.i
	switch c := r.data[r.i]; c {
	case '{', '[':
		// The decoder refuses a document nested deeper than it allows; a
		// value checked alone would not be: what nests deeper than any
		// catalog does is left to the decoder.
		end, err := scanJSONValueDepth(r.data, r.i, quickMaxDepth)
		if err != nil {
			return nil, false
		}
		r.i = end
	case '"':
		end, ok := stringEnd(r.data, r.i+1)
		if !ok {
			return nil, false
		}
		r.i = end + 1
	default:
		for r.i < len(r.data) {
			c := r.data[r.i]
			if c == ',' || c == '}' || c == ']' || isJSONSpace(c) {
				break
			}
			r.i++
		}
	}
	return r.data[start:r.i], true
}

// checkedValue is value, checked to be JSON the decoder accepts: without
// duplicate names or invalid UTF-8, which it would also accept.
func (r *quickReader) checkedValue() ([]byte, bool) {
	v, ok := r.value()
	return v, ok && jsontext.Value(v).IsValid()
}

// decoded decodes the next value into dst with the decoder.
func (r *quickReader) decoded(dst any) bool {
	v, ok := r.checkedValue()
	return ok && jsonv1.Unmarshal(v, dst) == nil
}

// properties reads the properties array. An olm.bundle.object value must
// be {"data":"<base64 text>"}, the base64 text printable ASCII; it is
// decoded and checked when the bundle is recorded. Every other value is
// checked here.
func (r *quickReader) properties(dst *[]Property) bool {
	r.space()
	if bytes.HasPrefix(r.data[r.i:], []byte("null")) {
		return false
	}
	if !r.token('[') {
		return false
	}
	var props []Property
	if r.token(']') {
		*dst = []Property{}
		return true
	}
	for {
		p, ok := r.property()
		if !ok {
			return false
		}
		props = append(props, p)
		if r.token(',') {
			continue
		}
		if !r.token(']') {
			return false
		}
		*dst = props
		return true
	}
}

func (r *quickReader) property() (Property, bool) {
	var p Property
	if !r.token('{') {
		return p, false
	}
	if r.token('}') {
		return p, true
	}
	var value []byte
	var seen []string
	for {
		key, ok := r.name(propertyFields, &seen)
		if !ok {
			return p, false
		}
		switch key {
		case "type":
			ok = r.stringField(&p.Type)
		case "value":
			value, ok = r.value()
		default:
			_, ok = r.checkedValue()
		}
		if !ok {
			return p, false
		}
		if r.token(',') {
			continue
		}
		if !r.token('}') {
			return p, false
		}
		break
	}
	if value == nil {
		return p, true
	}
	if p.Type == PropertyBundleObject {
		data, ok := plainObjectData(value)
		if !ok || !printableASCII(data) {
			return p, false
		}
		// An object's value is read while its document is recorded and
		// not kept: it is not copied out of the document.
		p.Value = json.RawMessage(value)
		return p, true
	}
	if !jsontext.Value(value).IsValid() {
		return p, false
	}
	p.Value = json.RawMessage(bytes.Clone(value))
	return p, true
}

// hasControl reports whether s holds a byte below 0x20, which a JSON string
// may not.
func hasControl(s []byte) bool {
	for _, c := range s {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// printableASCII reports whether every byte of s is in 0x20..0x7e, eight at
// a time.
func printableASCII(s []byte) bool {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	for len(s) >= 8 {
		w := binary.LittleEndian.Uint64(s)
		// With every byte below 0x80, adding 0x01 or 0x60 to each carries
		// into no other: a byte of 0x7f reaches 0x80, a byte below 0x20
		// stays below it.
		if w&high != 0 || (w+ones)&high != 0 || ^(w+0x60*ones)&high != 0 {
			return false
		}
		s = s[8:]
	}
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
