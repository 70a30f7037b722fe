package catalog

import (
	"fmt"
	"sort"
	"strings"
)

// Severity tells whether a problem kept something from being served.
type Severity string

const (
	// SeverityError means the named bundle, channel entry or package is not served.
	SeverityError Severity = "error"
	// SeverityWarning means the content is served, with the adjustment the reason describes.
	SeverityWarning Severity = "warning"
)

// Problem is one defect found while loading a catalog.
type Problem struct {
	// Path is the file or directory, relative to the catalog root.
	Path string `json:"path"`
	// Field names the part of the document at fault, e.g. spec.version.
	Field string `json:"field,omitempty"`
	// Reason says what is wrong, and what was done about it.
	Reason string `json:"reason"`
	// Severity is error when something was left out, warning otherwise.
	Severity Severity `json:"severity"`
	// Package and Bundle name what the problem affects, when known.
	Package string `json:"package,omitempty"`
	Bundle  string `json:"bundle,omitempty"`
}

// String renders "path: field: reason".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Path)
	if p.Field != "" {
		b.WriteString(": ")
		b.WriteString(p.Field)
	}
	b.WriteString(": ")
	b.WriteString(p.Reason)
	return b.String()
}

// Error implements error.
func (p Problem) Error() string { return p.String() }

// Problems is the list of problems found in one load.
type Problems []Problem

// Errors returns the problems of severity error.
func (ps Problems) Errors() Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity == SeverityError {
			out = append(out, p)
		}
	}
	return out
}

func (ps Problems) sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Path != ps[j].Path {
			return ps[i].Path < ps[j].Path
		}
		if ps[i].Field != ps[j].Field {
			return ps[i].Field < ps[j].Field
		}
		return ps[i].Reason < ps[j].Reason
	})
}

// StrictError is returned by Load with WithStrict when the catalog has errors.
type StrictError struct {
	Problems Problems
}

func (e *StrictError) Error() string {
	errs := e.Problems.Errors()
	if len(errs) == 0 {
		return "catalog refused"
	}
	more := ""
	if len(errs) > 1 {
		more = fmt.Sprintf(" (and %d more)", len(errs)-1)
	}
	return fmt.Sprintf("catalog refused in strict mode: %s%s", errs[0], more)
}

// problemSink collects problems; it is not safe for concurrent use.
type problemSink struct {
	list Problems
}

func (s *problemSink) add(sev Severity, path, field, format string, args ...any) {
	s.list = append(s.list, Problem{Path: path, Field: field, Reason: fmt.Sprintf(format, args...), Severity: sev})
}

func (s *problemSink) errorf(path, field, format string, args ...any) {
	s.add(SeverityError, path, field, format, args...)
}

func (s *problemSink) warnf(path, field, format string, args ...any) {
	s.add(SeverityWarning, path, field, format, args...)
}

// tag sets package and bundle on the problems added since mark.
func (s *problemSink) tag(mark int, pkg, bundle string) {
	for i := mark; i < len(s.list); i++ {
		if s.list[i].Package == "" {
			s.list[i].Package = pkg
		}
		if s.list[i].Bundle == "" {
			s.list[i].Bundle = bundle
		}
	}
}
