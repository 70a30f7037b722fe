package yamljson

import (
	"bytes"
	"slices"
	"strconv"
	"unicode/utf8"

	"sigs.k8s.io/yaml"
)

// MaxDepth is the deepest nesting of collections the fast path parses;
// deeper documents go to the library.
const MaxDepth = 256

// maxAsked is how many scalars of one document the library is asked to
// type before the whole document goes to it.
const maxAsked = 256

// maxKey is the longest simple key YAML allows.
const maxKey = 1024

// Kind is the type of a Value.
type Kind uint8

// The kinds of values.
const (
	Null Kind = iota
	Bool
	Number
	String
	Map
	Seq
)

type node struct {
	kind Kind
	// raw is the JSON text of a Bool or Number and the decoded text of a
	// String.
	raw []byte
	// key is the decoded key of a mapping entry.
	key []byte
	// first and next link a collection's children (-1: none).
	first, next int32
	n           int32
}

// Doc is a parsed document. Its values are valid until the next Parse
// with the same Doc.
type Doc struct {
	src     []byte
	pos     int
	nodes   []node
	scratch []byte
	depth   int
	order   []int32
	// asked counts the scalars the library typed.
	asked int
}

// Value is one value of a Doc.
type Value struct {
	d *Doc
	i int32
}

// Convert converts one YAML document to JSON exactly as
// sigs.k8s.io/yaml.YAMLToJSON does. fast reports whether the one-pass
// parser answered.
func Convert(src []byte) (js []byte, fast bool, err error) {
	var d Doc
	return d.Convert(src)
}

// Convert is the package's Convert parsing into d, whose buffers are
// reused from one document to the next.
func (d *Doc) Convert(src []byte) (js []byte, fast bool, err error) {
	if v, ok := d.Parse(src); ok {
		if js, ok := v.JSON(); ok {
			return js, true, nil
		}
	}
	js, err = yaml.YAMLToJSON(src)
	return js, false, err
}

// Parse parses src; ok is false when src is outside the subset (the caller
// then uses the library).
func (d *Doc) Parse(src []byte) (root Value, ok bool) {
	d.src, d.pos, d.nodes, d.scratch, d.depth, d.asked = src, 0, d.nodes[:0], d.scratch[:0], 0, 0
	if len(src) == 0 || src[len(src)-1] != '\n' || !checkChars(src) {
		return Value{}, false
	}
	ind, ok := d.nextLine()
	if !ok {
		return Value{}, false
	}
	if ind < 0 {
		// Only comments: the library reads null.
		return Value{d: d, i: d.add(node{kind: Null})}, true
	}
	c := d.src[d.pos]
	if c == '%' || (ind == 0 && (bytes.HasPrefix(d.src[d.pos:], []byte("---")) || bytes.HasPrefix(d.src[d.pos:], []byte("...")))) {
		return Value{}, false
	}
	var i int32
	if isSeqEntry(d.src, d.pos) {
		i, ok = d.parseSeq(ind)
	} else if d.isKeyLine() {
		i, ok = d.parseMap(ind)
	} else {
		return Value{}, false
	}
	if !ok {
		return Value{}, false
	}
	// Only blank lines and comments may follow.
	if ind, ok := d.nextLine(); !ok || ind >= 0 {
		return Value{}, false
	}
	return Value{d: d, i: i}, true
}

// checkChars refuses what the library reads differently or not at all:
// carriage returns, control characters, invalid UTF-8, the byte order mark,
// and the characters YAML 1.1 takes as line breaks.
func checkChars(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if plainASCII[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			return false
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError || r < 0xA0 || r == 0x2028 || r == 0x2029 || r == 0xFEFF || (r > 0xD7FF && r < 0xE000) || (r > 0xFFFD && r < 0x10000) {
			return false
		}
		i += n
	}
	return true
}

// plainASCII marks the ASCII bytes YAML takes as they are.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	t['\n'], t['\t'] = true, true
	return t
}()

// nextLine moves pos to the content of the next line that is not blank or
// a comment and returns its indentation, -1 at the end. It refuses tabs in
// indentation. pos must be at the start of a line.
func (d *Doc) nextLine() (int, bool) {
	for d.pos < len(d.src) {
		j := d.pos
		for j < len(d.src) && d.src[j] == ' ' {
			j++
		}
		switch d.src[j] {
		case '\t':
			return 0, false
		case '\n':
			d.pos = j + 1
			continue
		case '#':
			d.pos = lineEnd(d.src, j) + 1
			continue
		}
		ind := j - d.pos
		d.pos = j
		return ind, true
	}
	return -1, true
}

// peekLine is nextLine without moving.
func (d *Doc) peekLine() (int, bool) {
	save := d.pos
	ind, ok := d.nextLine()
	d.pos = save
	return ind, ok
}

func lineEnd(b []byte, i int) int {
	if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
		return i + j
	}
	return len(b)
}

func isSeqEntry(b []byte, i int) bool {
	return b[i] == '-' && (b[i+1] == ' ' || b[i+1] == '\n')
}

// column is pos's column on its line.
func (d *Doc) column() int {
	return d.pos - (bytes.LastIndexByte(d.src[:d.pos], '\n') + 1)
}

func (d *Doc) add(n node) int32 {
	n.first, n.next = -1, -1
	d.nodes = append(d.nodes, n)
	return int32(len(d.nodes) - 1)
}

// restOfLine checks that only spaces and a comment follow pos on its line
// and moves pos to the next line.
func (d *Doc) restOfLine() bool {
	j := d.pos
	for d.src[j] == ' ' {
		j++
	}
	switch d.src[j] {
	case '\n':
	case '#':
		if j == d.pos {
			return false
		}
		j = lineEnd(d.src, j)
	default:
		return false
	}
	d.pos = j + 1
	return true
}

// isKeyLine reports whether pos starts a mapping entry on its line.
func (d *Doc) isKeyLine() bool {
	save := d.pos
	_, ok := d.parseKey()
	d.pos = save
	return ok
}

// parseKey reads a key and its colon; pos ends after the colon.
func (d *Doc) parseKey() ([]byte, bool) {
	s := d.src
	switch s[d.pos] {
	case '"', '\'':
		v, ok := d.quoted(false)
		if !ok {
			return nil, false
		}
		j := d.pos
		for s[j] == ' ' {
			j++
		}
		if s[j] != ':' || (s[j+1] != ' ' && s[j+1] != '\n') {
			return nil, false
		}
		d.pos = j + 1
		return v, true
	}
	if !plainStart(s, d.pos) {
		return nil, false
	}
	start := d.pos
	for j := start; ; j++ {
		switch s[j] {
		case '\n', '#', '\t':
			return nil, false
		case ':':
			if s[j+1] != ' ' && s[j+1] != '\n' {
				continue
			}
			k := bytes.TrimRight(s[start:j], " ")
			if len(k) == 0 || len(k) > maxKey || !plainIsString(k) {
				return nil, false
			}
			d.pos = j + 1
			return k, true
		}
	}
}

// plainStart reports whether a plain scalar may start at i.
func plainStart(s []byte, i int) bool {
	switch s[i] {
	case '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', ' ', '\t', '\n':
		return false
	}
	return true
}

// plainIsString reports whether a plain scalar resolves to a string
// without doubt.
func plainIsString(v []byte) bool {
	switch v[0] {
	case 'y', 'Y', 'n', 'N', 't', 'T', 'f', 'F', 'o', 'O', '~':
		return !isResolved(v)
	case '+', '-', '.', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return false
	case '<':
		return string(v) != "<<"
	}
	return true
}

func isResolved(v []byte) bool {
	switch string(v) {
	case "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
		"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF",
		"~", "null", "Null", "NULL":
		return true
	}
	return false
}

func (d *Doc) enter() bool {
	d.depth++
	return d.depth <= MaxDepth
}

// parseMap reads a block mapping whose keys lie at column ind; pos is at
// its first key.
func (d *Doc) parseMap(ind int) (int32, bool) {
	if !d.enter() {
		return 0, false
	}
	defer func() { d.depth-- }()
	m := d.add(node{kind: Map})
	last := int32(-1)
	for {
		key, ok := d.parseKey()
		if !ok {
			return 0, false
		}
		v, ok := d.parseValue(ind, true)
		if !ok {
			return 0, false
		}
		d.nodes[v].key = key
		d.link(m, &last, v)
		next, ok := d.nextLine()
		if !ok {
			return 0, false
		}
		if next < ind {
			d.backToLineStart()
			return m, true
		}
		if next > ind || isSeqEntry(d.src, d.pos) {
			return 0, false
		}
	}
}

// backToLineStart puts pos back at the start of its line.
func (d *Doc) backToLineStart() {
	if d.pos < len(d.src) {
		d.pos = bytes.LastIndexByte(d.src[:d.pos], '\n') + 1
	}
}

func (d *Doc) link(parent int32, last *int32, child int32) {
	if *last < 0 {
		d.nodes[parent].first = child
	} else {
		d.nodes[*last].next = child
	}
	*last = child
	d.nodes[parent].n++
}

// parseSeq reads a block sequence whose dashes lie at column ind; pos is at
// its first dash.
func (d *Doc) parseSeq(ind int) (int32, bool) {
	if !d.enter() {
		return 0, false
	}
	defer func() { d.depth-- }()
	q := d.add(node{kind: Seq})
	last := int32(-1)
	for {
		d.pos++ // the dash
		v, ok := d.parseValue(ind, false)
		if !ok {
			return 0, false
		}
		d.link(q, &last, v)
		next, ok := d.nextLine()
		if !ok {
			return 0, false
		}
		if next < ind || (next == ind && !isSeqEntry(d.src, d.pos)) {
			d.backToLineStart()
			return q, true
		}
		if next > ind {
			return 0, false
		}
	}
}

// parseValue reads the value after a key's colon (inMap) or a sequence
// entry's dash, whose collection lies at column ind. pos ends at the start
// of the line after the value.
func (d *Doc) parseValue(ind int, inMap bool) (int32, bool) {
	s := d.src
	j := d.pos
	for s[j] == ' ' {
		j++
	}
	if s[j] == '\t' {
		return 0, false
	}
	if s[j] == '\n' || (s[j] == '#' && j > d.pos) {
		// The value lies on the next lines.
		if s[j] == '#' {
			j = lineEnd(s, j)
		}
		d.pos = j + 1
		next, ok := d.peekLine()
		if !ok {
			return 0, false
		}
		switch {
		case next > ind:
			d.nextLine()
			if isSeqEntry(s, d.pos) {
				return d.parseSeq(next)
			}
			if !d.isKeyLine() {
				return 0, false
			}
			return d.parseMap(next)
		case next == ind && inMap:
			d.nextLine()
			if isSeqEntry(s, d.pos) {
				return d.parseSeq(next)
			}
			d.backToLineStart()
		}
		return d.add(node{kind: Null}), true
	}
	if j == d.pos && s[j] != '\n' {
		// "key:value" or "-value" never get here; anything else glued to
		// the indicator is outside the subset.
		return 0, false
	}
	d.pos = j
	if !inMap {
		col := d.column()
		if isSeqEntry(s, j) {
			return d.parseSeq(col)
		}
		if d.isKeyLine() {
			return d.parseMap(col)
		}
	}
	switch s[j] {
	case '|', '>':
		return d.blockScalar(ind)
	case '"', '\'':
		v, ok := d.quoted(true)
		if !ok || !d.restOfLine() {
			return 0, false
		}
		return d.add(node{kind: String, raw: v}), true
	case '[', '{':
		k := j + 1
		for s[k] == ' ' {
			k++
		}
		var v int32
		if s[k] == s[j]+2 { // ']' is '['+2, '}' is '{'+2
			kind := Seq
			if s[j] == '{' {
				kind = Map
			}
			v, d.pos = d.add(node{kind: kind}), k+1
		} else if s[j] == '[' {
			var ok bool
			if v, ok = d.flowSeq(); !ok {
				return 0, false
			}
		} else {
			return 0, false
		}
		if !d.restOfLine() {
			return 0, false
		}
		if next, ok := d.peekLine(); !ok || next > ind {
			return 0, false
		}
		return v, true
	}
	return d.plain(ind)
}

// plain reads a plain scalar, folding the more indented lines that
// continue it as the library does.
func (d *Doc) plain(ind int) (int32, bool) {
	s := d.src
	start := d.pos
	switch s[start] {
	case '-', '?', ':':
		if s[start+1] == ' ' || s[start+1] == '\n' {
			return 0, false
		}
	default:
		if !plainStart(s, start) {
			return 0, false
		}
	}
	v, more, ok := plainLine(s, start)
	if !ok {
		return 0, false
	}
	d.pos = lineEnd(s, start) + 1
	var out []byte
	for more {
		// Blank lines, then a continuation line more indented than ind.
		p, blanks := d.pos, 0
		var j int
		for {
			j = p
			for j < len(s) && s[j] == ' ' {
				j++
			}
			if j >= len(s) || s[j] != '\n' {
				break
			}
			blanks++
			p = j + 1
		}
		if j >= len(s) || j-p <= ind || s[j] == '#' {
			break
		}
		if s[j] == '\t' {
			return 0, false
		}
		line, cont, ok := plainLine(s, j)
		if !ok || (j == p && (bytes.HasPrefix(s[p:], []byte("---")) || bytes.HasPrefix(s[p:], []byte("...")))) {
			return 0, false
		}
		if out == nil {
			out = append(d.buf(), v...)
		}
		if blanks == 0 {
			out = append(out, ' ')
		}
		for ; blanks > 0; blanks-- {
			out = append(out, '\n')
		}
		out = append(out, line...)
		d.pos = lineEnd(s, j) + 1
		more = cont
	}
	if out != nil {
		d.scratch = out[len(out):]
		v = out
	}
	// Whatever follows must not be more indented.
	if next, ok := d.peekLine(); !ok || next > ind {
		return 0, false
	}
	if bytes.HasPrefix(v, []byte("---")) || bytes.HasPrefix(v, []byte("...")) {
		return 0, false
	}
	if out != nil && bytes.IndexByte(v, '\n') >= 0 {
		// Only strings may span lines here.
		switch v[0] {
		case '+', '-', '.', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return 0, false
		}
	}
	return d.scalar(v)
}

// plainLine reads one line of a plain scalar from i: its text without
// trailing spaces, and whether the scalar may continue on the next line
// (false after a comment).
func plainLine(s []byte, i int) (v []byte, more, ok bool) {
	end := i
	j := i
	for ; s[j] != '\n'; j++ {
		switch s[j] {
		case '\t':
			return nil, false, false
		case ':':
			if s[j+1] == ' ' || s[j+1] == '\n' {
				return nil, false, false
			}
		case '#':
			if j > i && s[j-1] == ' ' {
				return s[i:end], false, true
			}
		}
		if s[j] != ' ' {
			end = j + 1
		}
	}
	return s[i:end], true, true
}

// flowSeq reads a flow sequence of scalars on one line.
func (d *Doc) flowSeq() (int32, bool) {
	s := d.src
	q := d.add(node{kind: Seq})
	last := int32(-1)
	j := d.pos + 1
	for first := true; ; first = false {
		for s[j] == ' ' {
			j++
		}
		if s[j] == ']' && first {
			break
		}
		var v int32
		switch s[j] {
		case '"', '\'':
			d.pos = j
			str, ok := d.quoted(false)
			if !ok {
				return 0, false
			}
			v, j = d.add(node{kind: String, raw: str}), d.pos
		default:
			k := j
			for ; s[k] != ',' && s[k] != ']' && s[k] != '\n'; k++ {
				switch s[k] {
				case '[', '{', '}', ':', '#', '\t', '"', '\'':
					return 0, false
				}
			}
			if s[k] == '\n' || !plainStart(s, j) && s[j] != '-' {
				return 0, false
			}
			t := bytes.TrimRight(s[j:k], " ")
			if len(t) == 0 || (t[0] == '-' && len(t) == 1) || bytes.HasPrefix(t, []byte("---")) || bytes.HasPrefix(t, []byte("...")) {
				return 0, false
			}
			var ok bool
			if v, ok = d.scalar(t); !ok {
				return 0, false
			}
			j = k
		}
		d.link(q, &last, v)
		for s[j] == ' ' {
			j++
		}
		if s[j] == ']' {
			break
		}
		if s[j] != ',' {
			return 0, false
		}
		j++
	}
	d.pos = j + 1
	return q, true
}

// scalar types a plain scalar as the library does.
func (d *Doc) scalar(v []byte) (int32, bool) {
	switch v[0] {
	case 'y', 'Y', 'n', 'N', 't', 'T', 'f', 'F', 'o', 'O', '~':
		switch string(v) {
		case "~", "null", "Null", "NULL":
			return d.add(node{kind: Null}), true
		case "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON":
			return d.add(node{kind: Bool, raw: []byte("true")}), true
		case "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF":
			return d.add(node{kind: Bool, raw: []byte("false")}), true
		}
	case '<':
		if string(v) == "<<" {
			return 0, false
		}
	case '+', '-', '.', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return d.numeric(v)
	}
	return d.add(node{kind: String, raw: v}), true
}

// numeric types a plain scalar that may be a number or a timestamp.
func (d *Doc) numeric(v []byte) (int32, bool) {
	if isDecimal(v) {
		return d.add(node{kind: Number, raw: v}), true
	}
	dots := 0
	for _, c := range v {
		if c == '.' {
			dots++
		}
		if !numericByte(c) || dots > 1 {
			// Neither an integer, a float nor a timestamp.
			return d.add(node{kind: String, raw: v}), true
		}
	}
	// The library types the scalar alone; a document full of such scalars
	// is cheaper for the library in one go.
	d.asked++
	if d.asked > maxAsked {
		return 0, false
	}
	js, err := yaml.YAMLToJSON(append(slices.Clip(v), '\n'))
	if err != nil || len(js) == 0 {
		return 0, false
	}
	switch js[0] {
	case '"':
		s, err := strconv.Unquote(string(js))
		if err != nil || s != string(v) {
			return 0, false
		}
		return d.add(node{kind: String, raw: v}), true
	case 'n':
		return d.add(node{kind: Null}), true
	case 't', 'f':
		return d.add(node{kind: Bool, raw: js}), true
	case '{', '[':
		return 0, false
	}
	return d.add(node{kind: Number, raw: js}), true
}

// isDecimal reports whether v is an integer the library prints as it is
// written.
func isDecimal(v []byte) bool {
	if v[0] == '-' {
		v = v[1:]
		if len(v) == 1 && v[0] == '0' {
			return false
		}
	}
	if len(v) == 0 || len(v) > 18 || (v[0] == '0' && len(v) > 1) {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// numericByte reports whether c may appear in an integer, a float, a
// timestamp or .inf/.nan.
func numericByte(c byte) bool {
	switch {
	case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		return true
	}
	switch c {
	case 'x', 'X', 'o', 'O', '_', '+', '-', '.', ':', 't', 'T', 'z', 'Z', ' ', 'n', 'N', 'i', 'I':
		return true
	}
	return false
}

// quoted reads a single- or double-quoted scalar, folded as the library
// folds it when it spans lines (multi); pos ends after the closing quote.
func (d *Doc) quoted(multi bool) ([]byte, bool) {
	s := d.src
	single := s[d.pos] == '\''
	j := d.pos + 1
	out := d.scratch[:0]
	for {
		if (j == 0 || s[j-1] == '\n') && j+3 < len(s) && (string(s[j:j+3]) == "---" || string(s[j:j+3]) == "...") && isBlank(s[j+3]) {
			return nil, false
		}
		if j >= len(s) {
			return nil, false
		}
		leadingBlanks := false
		for j < len(s) && !isBlank(s[j]) {
			c := s[j]
			if single && c == '\'' {
				if s[j+1] == '\'' {
					out = append(out, '\'')
					j += 2
					continue
				}
				break
			}
			if !single && c == '"' {
				break
			}
			if !single && c == '\\' {
				if s[j+1] == '\n' {
					if !multi {
						return nil, false
					}
					j += 2
					leadingBlanks = true
					break
				}
				var ok bool
				if out, j, ok = escape(out, s, j); !ok {
					return nil, false
				}
				continue
			}
			out = append(out, c)
			j++
		}
		if j < len(s) && s[j] == "\"'"[b2i(single)] {
			break
		}
		wsStart, wsEnd := j, j
		leadingBreak, trailingBreaks := false, 0
		for j < len(s) && isBlank(s[j]) {
			if s[j] != '\n' {
				if !leadingBlanks {
					wsEnd = j + 1
				}
				j++
				continue
			}
			if !multi {
				return nil, false
			}
			if !leadingBlanks {
				leadingBreak, leadingBlanks = true, true
			} else {
				trailingBreaks++
			}
			j++
		}
		switch {
		case leadingBlanks && leadingBreak && trailingBreaks == 0:
			out = append(out, ' ')
		case leadingBlanks:
			for ; trailingBreaks > 0; trailingBreaks-- {
				out = append(out, '\n')
			}
		default:
			out = append(out, s[wsStart:wsEnd]...)
		}
	}
	d.pos = j + 1
	d.scratch = out[len(out):]
	return out, true
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// isBlank reports YAML white space and line feeds.
func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' }

// escape decodes the double-quoted escape sequence at s[j].
func escape(out, s []byte, j int) ([]byte, int, bool) {
	j++
	width := 0
	switch s[j] {
	case '0':
		out = append(out, 0)
	case 'a':
		out = append(out, '\a')
	case 'b':
		out = append(out, '\b')
	case 't', '\t':
		out = append(out, '\t')
	case 'n':
		out = append(out, '\n')
	case 'v':
		out = append(out, '\v')
	case 'f':
		out = append(out, '\f')
	case 'r':
		out = append(out, '\r')
	case 'e':
		out = append(out, 0x1b)
	case ' ', '"', '\'', '/', '\\':
		out = append(out, s[j])
	case 'N':
		out = append(out, "\u0085"...)
	case '_':
		out = append(out, "\u00a0"...)
	case 'L':
		out = append(out, "\u2028"...)
	case 'P':
		out = append(out, "\u2029"...)
	case 'x':
		width = 2
	case 'u':
		width = 4
	case 'U':
		width = 8
	default:
		return nil, 0, false
	}
	if width == 0 {
		return out, j + 1, true
	}
	if j+width >= len(s) {
		return nil, 0, false
	}
	var r rune
	for _, h := range s[j+1 : j+1+width] {
		var v byte
		switch {
		case h >= '0' && h <= '9':
			v = h - '0'
		case h >= 'a' && h <= 'f':
			v = h - 'a' + 10
		case h >= 'A' && h <= 'F':
			v = h - 'A' + 10
		default:
			return nil, 0, false
		}
		r = r<<4 | rune(v)
	}
	if (r >= 0xD800 && r <= 0xDFFF) || r > 0x10FFFF {
		return nil, 0, false
	}
	return utf8.AppendRune(out, r), j + 1 + width, true
}

// blockScalar reads a literal or folded block scalar whose parent
// collection lies at column ind.
func (d *Doc) blockScalar(ind int) (int32, bool) {
	s := d.src
	literal := s[d.pos] == '|'
	d.pos++
	chomp := 0
	switch s[d.pos] {
	case '-':
		chomp = -1
		d.pos++
	case '+':
		chomp = 1
		d.pos++
	}
	if s[d.pos] >= '0' && s[d.pos] <= '9' {
		return 0, false
	}
	if s[d.pos] != '\n' && s[d.pos] != ' ' {
		return 0, false
	}
	if !d.restOfLine() {
		return 0, false
	}
	// Leading blank lines and the indentation of the first content line.
	indent := 0
	maxBlank := 0
	p := d.pos
	leading := 0
	for p < len(s) {
		j := p
		for s[j] == ' ' {
			j++
		}
		if s[j] != '\n' {
			indent = j - p
			if s[j] == '\t' {
				return 0, false
			}
			break
		}
		maxBlank = max(maxBlank, j-p)
		leading++
		p = j + 1
	}
	if indent <= ind || p >= len(s) {
		// No content: the scalar is empty (keep chomping keeps the breaks).
		if maxBlank > ind {
			return 0, false
		}
		var v []byte
		if chomp == 1 {
			v = append(d.buf(), bytes.Repeat([]byte{'\n'}, leading)...)
			d.scratch = v[len(v):]
		}
		d.pos = p
		return d.add(node{kind: String, raw: v}), true
	}
	if maxBlank > indent {
		return 0, false
	}
	out := d.scratch[:0]
	breaks := leading // blank lines before the current content line
	leadingBreak := false
	leadingBlank := false
	for p < len(s) {
		// p is at the start of a line with at least indent spaces.
		line := s[p+indent : lineEnd(s, p)+1]
		trailingBlank := line[0] == ' ' || line[0] == '\t'
		if trailingBlank && len(bytes.Trim(line, " \t\n")) == 0 {
			return 0, false // a whitespace-only content line
		}
		if !literal && !leadingBlank && !trailingBlank && leadingBreak {
			if breaks == 0 {
				out = append(out, ' ')
			}
		} else if leadingBreak {
			out = append(out, '\n')
		}
		for ; breaks > 0; breaks-- {
			out = append(out, '\n')
		}
		leadingBlank = trailingBlank
		out = append(out, line[:len(line)-1]...)
		leadingBreak = true
		p += indent + len(line)
		// Blank lines, then the next content line or the end.
		for p < len(s) {
			j := p
			for j < len(s) && s[j] == ' ' && j-p < indent {
				j++
			}
			if s[j] == '\n' {
				breaks++
				p = j + 1
				continue
			}
			if j-p < indent && (s[j] == ' ' || s[j] == '\t') {
				return 0, false
			}
			if s[j] == '\t' && j-p < indent {
				return 0, false
			}
			break
		}
		if p >= len(s) {
			break
		}
		k := p
		for s[k] == ' ' {
			k++
		}
		if k-p < indent {
			break
		}
	}
	if chomp != -1 && leadingBreak {
		out = append(out, '\n')
	}
	if chomp == 1 {
		for ; breaks > 0; breaks-- {
			out = append(out, '\n')
		}
	}
	d.scratch = out[len(out):]
	d.pos = p
	return d.add(node{kind: String, raw: out}), true
}

// maxKept bounds the nodes and scratch bytes Reset keeps for reuse.
const maxKept = 1 << 16

// Reset drops the document, so that a pooled Doc holds neither the input
// nor, after a large document, its buffers.
func (d *Doc) Reset() {
	d.src = nil
	if cap(d.nodes) > maxKept {
		d.nodes = nil
	}
	if cap(d.scratch) > maxKept*16 {
		d.scratch = nil
	}
	if cap(d.order) > maxKept {
		d.order = nil
	}
}

// buf returns the free tail of the scratch arena, for a decoded scalar.
func (d *Doc) buf() []byte { return d.scratch[:0] }
