package yamljson

import (
	"bytes"
	"slices"
	"unicode/utf8"
)

// JSON renders the value as sigs.k8s.io/yaml.YAMLToJSON does: mapping keys
// sorted, strings escaped as encoding/json escapes them. ok is false when a
// mapping repeats a key (the caller then uses the library).
func (v Value) JSON() (js []byte, ok bool) {
	out := make([]byte, 0, len(v.d.src)+len(v.d.src)/16)
	return v.d.emit(out, v.i)
}

func (d *Doc) emit(out []byte, i int32) ([]byte, bool) {
	n := &d.nodes[i]
	switch n.kind {
	case Null:
		return append(out, "null"...), true
	case Bool, Number:
		return append(out, n.raw...), true
	case String:
		return appendString(out, n.raw), true
	case Seq:
		out = append(out, '[')
		for c := n.first; c >= 0; c = d.nodes[c].next {
			if c != n.first {
				out = append(out, ',')
			}
			var ok bool
			if out, ok = d.emit(out, c); !ok {
				return nil, false
			}
		}
		return append(out, ']'), true
	}
	start := len(d.order)
	for c := n.first; c >= 0; c = d.nodes[c].next {
		d.order = append(d.order, c)
	}
	end := len(d.order)
	defer func() { d.order = d.order[:start] }()
	kids := d.order[start:end]
	slices.SortFunc(kids, func(a, b int32) int { return bytes.Compare(d.nodes[a].key, d.nodes[b].key) })
	out = append(out, '{')
	for k := start; k < end; k++ {
		c := d.order[k]
		if k > start {
			if bytes.Equal(d.nodes[d.order[k-1]].key, d.nodes[c].key) {
				return nil, false
			}
			out = append(out, ',')
		}
		out = appendString(out, d.nodes[c].key)
		out = append(out, ':')
		var ok bool
		if out, ok = d.emit(out, c); !ok {
			return nil, false
		}
	}
	return append(out, '}'), true
}

const hex = "0123456789abcdef"

// jsonSafe marks the ASCII bytes encoding/json writes as they are (with
// HTML escaping on, as json.Marshal has it).
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	t['"'], t['\\'], t['<'], t['>'], t['&'] = false, false, false, false, false
	return t
}()

// appendString appends s (valid UTF-8) as encoding/json.Marshal writes a
// string: HTML characters, U+2028 and U+2029 escaped.
func appendString(out, s []byte) []byte {
	out = append(out, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonSafe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			out = append(out, s[start:i]...)
			switch c {
			case '\\', '"':
				out = append(out, '\\', c)
			case '\b':
				out = append(out, '\\', 'b')
			case '\f':
				out = append(out, '\\', 'f')
			case '\n':
				out = append(out, '\\', 'n')
			case '\r':
				out = append(out, '\\', 'r')
			case '\t':
				out = append(out, '\\', 't')
			default:
				out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			out = append(out, s[start:i]...)
			out = append(out, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			out = append(out, s[start:i]...)
			out = append(out, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}

// Kind returns the value's kind.
func (v Value) Kind() Kind { return v.d.nodes[v.i].kind }

// Str returns a String value's text; ok is false for other kinds.
func (v Value) Str() (string, bool) {
	n := &v.d.nodes[v.i]
	if n.kind != String {
		return "", false
	}
	return string(n.raw), true
}

// Number returns a Number value's JSON text; ok is false for other kinds.
func (v Value) Number() (string, bool) {
	n := &v.d.nodes[v.i]
	if n.kind != Number {
		return "", false
	}
	return string(n.raw), true
}

// Len returns the number of entries of a Map or Seq.
func (v Value) Len() int { return int(v.d.nodes[v.i].n) }

// Each calls f for every entry of a Map (with its key) or Seq (key nil), in
// document order, until f returns false.
func (v Value) Each(f func(key []byte, e Value) bool) {
	for c := v.d.nodes[v.i].first; c >= 0; c = v.d.nodes[c].next {
		if !f(v.d.nodes[c].key, Value{d: v.d, i: c}) {
			return
		}
	}
}
