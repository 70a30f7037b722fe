package livediff

import (
	"fmt"
	"sort"
	"strconv"
)

// Default bounds of a Summary.
const (
	// DefaultMaxLines bounds the lines of a Summary.
	DefaultMaxLines = 40
	// DefaultMaxBytes bounds the bytes of a Summary.
	DefaultMaxBytes = 8 << 10
	// maxValue bounds one value shown in a field line.
	maxValue = 120
	// maxFieldsPerObject bounds the field changes collected per object.
	maxFieldsPerObject = 200
)

// FieldChanges lists the fields that differ between a live object and the
// dry run's result, one "path: old -> new" each, sorted by path. Server
// written metadata and status are left out. At most maxFieldsPerObject
// are returned, the last of them saying how many more there are.
func FieldChanges(live, next map[string]any) []string {
	var out []string
	walk("", strip(live), strip(next), &out)
	sort.Strings(out)
	if len(out) > maxFieldsPerObject {
		more := len(out) - maxFieldsPerObject + 1
		out = append(out[:maxFieldsPerObject-1], fmt.Sprintf("and %d more fields", more))
	}
	return out
}

// strip is a shallow copy of obj without status and the server-written
// metadata.
func strip(obj map[string]any) map[string]any {
	c := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "status" {
			c[k] = v
		}
	}
	if md, ok := obj["metadata"].(map[string]any); ok {
		m := make(map[string]any, len(md))
		for k, v := range md {
			m[k] = v
		}
		for _, f := range noise {
			delete(m, f)
		}
		c["metadata"] = m
	}
	return c
}

func walk(path string, a, b any, out *[]string) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			keys := map[string]bool{}
			for k := range av {
				keys[k] = true
			}
			for k := range bv {
				keys[k] = true
			}
			for k := range keys {
				walk(join(path, k), av[k], bv[k], out)
			}
			return
		}
	case []any:
		if bv, ok := b.([]any); ok && len(av) == len(bv) {
			for i := range av {
				walk(path+"["+strconv.Itoa(i)+"]", av[i], bv[i], out)
			}
			return
		}
	}
	as, bs := value(a), value(b)
	if as != bs {
		*out = append(*out, path+": "+as+" -> "+bs)
	}
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// value shows a leaf (or a subtree that changed shape), bounded.
func value(v any) string {
	if v == nil {
		return "(none)"
	}
	var s string
	switch x := v.(type) {
	case string:
		s = strconv.Quote(x)
	case map[string]any:
		s = fmt.Sprintf("{%d fields}", len(x))
	case []any:
		s = fmt.Sprintf("[%d items]", len(x))
	default:
		s = fmt.Sprint(x)
	}
	if len(s) > maxValue {
		s = s[:maxValue] + "..."
	}
	return s
}

// Summary is r as lines: one per changed field of a changed object (none
// when only its status or server-written metadata differ)
// ("Deployment ns/name: spec...image: \"a\" -> \"b\""), one per other
// object that is not unchanged, and RBAC gains and losses. It holds at
// most maxLines lines and maxBytes bytes; when lines are left out, the last
// line says "and K more".
func Summary(r *Result, maxLines, maxBytes int) []string {
	var all []string
	for _, o := range r.Objects {
		switch {
		case o.Action == ActionUnchanged:
		case o.Action == ActionChange:
			// No field: only status or server-written metadata differ.
			for _, f := range o.Fields {
				all = append(all, o.Object+": "+f)
			}
		case o.Message != "":
			all = append(all, o.Object+": "+o.Action+": "+o.Message)
		default:
			all = append(all, o.Object+": "+o.Action)
		}
	}
	for _, p := range r.RBAC.Added {
		all = append(all, "RBAC added: "+p)
	}
	for _, p := range r.RBAC.Removed {
		all = append(all, "RBAC removed: "+p)
	}
	return Bound(all, maxLines, maxBytes)
}

// Bound keeps the first lines of all within maxLines lines and maxBytes
// bytes, the last kept line saying "and K more" when some are left out.
func Bound(all []string, maxLines, maxBytes int) []string {
	if maxLines < 1 {
		maxLines = 1
	}
	out := []string{}
	size := 0
	for i, l := range all {
		rest := len(all) - i
		more := fmt.Sprintf("and %d more", rest)
		fitsLine := len(out)+1 < maxLines || (rest == 1 && len(out)+1 == maxLines)
		fitsBytes := size+len(l)+len(more) <= maxBytes || (rest == 1 && size+len(l) <= maxBytes)
		if !fitsLine || !fitsBytes {
			out = append(out, more)
			return out
		}
		out = append(out, l)
		size += len(l)
	}
	return out
}
