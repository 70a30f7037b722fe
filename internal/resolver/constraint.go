package resolver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/blang/semver/v4"
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/ferrydev/ferry/internal/catalog"
)

// Limits of constraint evaluation. A constraint beyond them is a precise
// reason to pass its bundle over, never a refusal of the catalog.
const (
	// MaxConstraintBytes is the largest olm.constraint value evaluated,
	// operator-framework's own limit.
	MaxConstraintBytes = 131072
	// MaxConstraintDepth is how deeply all, any and not may nest.
	MaxConstraintDepth = 16
	// MaxCELRuleBytes is the longest CEL rule compiled.
	MaxCELRuleBytes = 16384
	// MaxCELCost is cel-go's cost limit of one evaluation of a rule against
	// one candidate; an evaluation that exceeds it counts as false, like
	// every evaluation error.
	MaxCELCost = 100000
	// MaxCELTotalCost is the CEL cost one resolution may spend on all
	// evaluations together (an evaluation that fails counts MaxCELCost).
	// Once spent, a constraint that still needs an evaluation passes over
	// its bundle with ReasonInvalidConstraint, saying so.
	MaxCELTotalCost = 200 * MaxCELCost
	// MaxConstraintOptions is how many bundles, most preferred first, may
	// meet one cel, all, any, not or olm.label.required constraint; the
	// others are not considered.
	MaxConstraintOptions = 64

	// maxHeldNotes bounds the notes of an unmet constraint on bundles
	// that pass but are held back.
	maxHeldNotes = 3
)

// CELFunctionSemverCompare is the function the CEL environment of
// olm.constraint offers besides the properties variable:
// semver_compare(a, b) is -1, 0 or 1 as version a is lower than, equal to
// or higher than b, both parsed leniently (a leading "v", missing minor or
// patch).
const CELFunctionSemverCompare = "semver_compare"

// celVariable is the variable a CEL rule sees: the candidate's properties,
// each {type, value} with the value as parsed JSON.
const celVariable = "properties"

var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable(celVariable, cel.ListType(cel.MapType(cel.StringType, cel.DynType))),
		cel.Function(CELFunctionSemverCompare,
			cel.Overload("semver_compare_dyn_dyn", []*cel.Type{cel.DynType, cel.DynType}, cel.IntType,
				cel.BinaryBinding(semverCompare))),
		cel.ParserExpressionSizeLimit(MaxCELRuleBytes),
	)
})

// semverCompare is operator-framework's semver_compare: both values
// rendered as text and parsed with blang's ParseTolerant.
func semverCompare(a, b ref.Val) ref.Val {
	v1, err := semver.ParseTolerant(fmt.Sprint(a.Value()))
	if err != nil {
		return types.NewErr("%s: %q is not a semantic version", CELFunctionSemverCompare, fmt.Sprint(a.Value()))
	}
	v2, err := semver.ParseTolerant(fmt.Sprint(b.Value()))
	if err != nil {
		return types.NewErr("%s: %q is not a semantic version", CELFunctionSemverCompare, fmt.Sprint(b.Value()))
	}
	return types.Int(v1.Compare(v2))
}

// ErrConstraint is wrapped by every reason a constraint cannot be evaluated.
var ErrConstraint = errors.New("constraint cannot be evaluated")

// predKind is the kind of test a predicate makes of a candidate bundle.
type predKind int

const (
	predGVK predKind = iota
	predPackage
	predCEL
	predAll
	predAny
	predNot
	predLabel
)

// predicate is a compiled test of one candidate bundle: a constraint is met
// by some chosen bundle that passes it. all, any and not test the same
// bundle: not passes a bundle that passes none of its children.
type predicate struct {
	kind     predKind
	gvk      catalog.GVK
	pkg      string
	rngText  string
	rng      semver.Range
	rule     string
	prg      cel.Program
	label    string
	children []*predicate
}

func (p *predicate) String() string {
	switch p.kind {
	case predGVK:
		return "API " + p.gvk.String()
	case predPackage:
		return "package " + p.pkg + " " + p.rngText
	case predCEL:
		return fmt.Sprintf("CEL rule %q", p.rule)
	case predLabel:
		return fmt.Sprintf("label %q", p.label)
	}
	parts := make([]string, len(p.children))
	for i, c := range p.children {
		parts[i] = c.String()
	}
	word := map[predKind]string{predAll: "all of", predAny: "any of", predNot: "none of"}[p.kind]
	return word + " (" + strings.Join(parts, ", ") + ")"
}

// bundleConstraint is one olm.constraint or olm.label.required property of
// a bundle, compiled.
type bundleConstraint struct {
	field   string // properties[i] (type)
	failure string // the constraint's failureMessage
	pred    *predicate
	err     error
}

// constraintsOf parses and compiles the constraints a bundle declares,
// once per bundle.
func (r *resolver) constraintsOf(b *catalog.Bundle) []*bundleConstraint {
	if cs, ok := r.bundleCons[b]; ok {
		return cs
	}
	var cs []*bundleConstraint
	for i, p := range b.Properties {
		if p.Type != catalog.PropertyConstraint && p.Type != catalog.PropertyLabelRequired {
			continue
		}
		bc := &bundleConstraint{field: fmt.Sprintf("properties[%d] (%s)", i, p.Type)}
		if p.Type == catalog.PropertyLabelRequired {
			var v struct {
				Label string `json:"label"`
			}
			if err := decodeStrict(p.Value, &v); err != nil {
				bc.err = fmt.Errorf("%w: value is not {label}: %w", ErrConstraint, err)
			} else if v.Label == "" {
				bc.err = fmt.Errorf("%w: label is empty", ErrConstraint)
			} else {
				bc.pred = &predicate{kind: predLabel, label: v.Label}
			}
			cs = append(cs, bc)
			continue
		}
		if len(p.Value) > MaxConstraintBytes {
			bc.err = fmt.Errorf("%w: %d bytes, more than %d", ErrConstraint, len(p.Value), MaxConstraintBytes)
			cs = append(cs, bc)
			continue
		}
		var c catalog.Constraint
		if err := decodeStrict(p.Value, &c); err != nil {
			bc.err = fmt.Errorf("%w: value is not a constraint: %w", ErrConstraint, err)
			cs = append(cs, bc)
			continue
		}
		bc.failure = c.FailureMessage
		bc.pred, bc.err = r.compile(&c, "", 0)
		cs = append(cs, bc)
	}
	if len(cs) > 0 {
		r.bundleCons[b] = cs
	}
	return cs
}

// decodeStrict decodes one JSON value, rejecting unknown fields.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// compile turns a constraint into a predicate; path names the nested
// constraint in errors ("any.constraints[1]").
func (r *resolver) compile(c *catalog.Constraint, path string, depth int) (*predicate, error) {
	at := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		if path != "" {
			msg = path + ": " + msg
		}
		return fmt.Errorf("%w: %s", ErrConstraint, msg)
	}
	if depth > MaxConstraintDepth {
		return nil, at("nested more than %d deep", MaxConstraintDepth)
	}
	var kinds []string
	var p *predicate
	if c.GVK != nil {
		kinds = append(kinds, "gvk")
		if c.GVK.Version == "" || c.GVK.Kind == "" {
			return nil, at("gvk needs version and kind")
		}
		p = &predicate{kind: predGVK, gvk: *c.GVK}
	}
	if c.Package != nil {
		kinds = append(kinds, "package")
		if c.Package.PackageName == "" {
			return nil, at("package needs packageName")
		}
		rng, err := catalog.ParseRange(c.Package.VersionRange)
		if err != nil {
			return nil, at("package.versionRange %q: %v", c.Package.VersionRange, err)
		}
		p = &predicate{kind: predPackage, pkg: c.Package.PackageName, rngText: c.Package.VersionRange, rng: rng}
	}
	if c.CEL != nil {
		kinds = append(kinds, "cel")
		prg, err := r.program(c.CEL.Rule)
		if err != nil {
			return nil, at("%v", err)
		}
		p = &predicate{kind: predCEL, rule: c.CEL.Rule, prg: prg}
	}
	for _, cc := range []struct {
		name string
		kind predKind
		c    *catalog.CompoundConstraint
	}{{"all", predAll, c.All}, {"any", predAny, c.Any}, {"not", predNot, c.Not}} {
		if cc.c == nil {
			continue
		}
		kinds = append(kinds, cc.name)
		if len(cc.c.Constraints) == 0 {
			return nil, at("%s has no constraints", cc.name)
		}
		p = &predicate{kind: cc.kind}
		for i := range cc.c.Constraints {
			child, err := r.compile(&cc.c.Constraints[i], strings.TrimPrefix(fmt.Sprintf("%s.%s.constraints[%d]", path, cc.name, i), "."), depth+1)
			if err != nil {
				return nil, err
			}
			p.children = append(p.children, child)
		}
	}
	if len(kinds) != 1 {
		return nil, at("exactly one of gvk, package, cel, all, any, not must be set, found %d (%s)", len(kinds), strings.Join(kinds, ", "))
	}
	return p, nil
}

// compiled is a CEL rule compiled once per resolution.
type compiled struct {
	prg cel.Program
	err error
}

// program compiles a CEL rule, once per rule text.
func (r *resolver) program(rule string) (cel.Program, error) {
	if c, ok := r.programs[rule]; ok {
		return c.prg, c.err
	}
	prg, err := compileRule(rule)
	r.programs[rule] = compiled{prg, err}
	return prg, err
}

func compileRule(rule string) (cel.Program, error) {
	if strings.TrimSpace(rule) == "" {
		return nil, errors.New("cel needs a rule")
	}
	if len(rule) > MaxCELRuleBytes {
		return nil, fmt.Errorf("CEL rule of %d bytes, more than %d", len(rule), MaxCELRuleBytes)
	}
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	ast, iss := env.Compile(rule)
	if err := iss.Err(); err != nil {
		return nil, fmt.Errorf("CEL rule %q does not compile: %s", rule, strings.ReplaceAll(err.Error(), "\n", " "))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("CEL rule %q gives %s, not bool", rule, ast.OutputType())
	}
	prg, err := env.Program(ast, cel.CostLimit(MaxCELCost))
	if err != nil {
		return nil, fmt.Errorf("CEL rule %q: %w", rule, err)
	}
	return prg, nil
}

// celKey caches one rule's answer for one candidate.
type celKey struct {
	rule string
	b    *catalog.Bundle
	n    *node // for an installed bundle no catalog has
}

// matches reports whether a candidate passes a predicate.
func (r *resolver) matches(p *predicate, n *node) bool {
	if n.bundle != nil {
		return r.passes(p, subject{bundle: n.bundle, pkg: n.pkg, version: n.version, provides: n.provides})
	}
	return r.passes(p, subject{synthetic: n, pkg: n.pkg, version: n.version, provides: n.provides})
}

// matchesBundle reports whether a catalog bundle passes a predicate,
// without placing it in a scope.
func (r *resolver) matchesBundle(p *predicate, b *catalog.Bundle) bool {
	return r.passes(p, subject{bundle: b, pkg: b.Package, version: b.Version, provides: b.ProvidedAPIs})
}

// subject is what a predicate tests: a catalog bundle, or an installed
// bundle no catalog has (synthetic).
type subject struct {
	bundle    *catalog.Bundle
	synthetic *node
	pkg       string
	version   semver.Version
	provides  []catalog.GVK
}

func (r *resolver) passes(p *predicate, s subject) bool {
	switch p.kind {
	case predGVK:
		return slices.Contains(s.provides, p.gvk)
	case predPackage:
		return s.pkg == p.pkg && p.rng(s.version)
	case predLabel:
		return slices.Contains(r.labelsOf(s.bundle), p.label)
	case predCEL:
		k := celKey{rule: p.rule, b: s.bundle, n: s.synthetic}
		if v, ok := r.celResults[k]; ok {
			return v
		}
		if r.celSpent >= MaxCELTotalCost {
			r.celOverBudget = true
			return false
		}
		out, det, err := p.prg.Eval(map[string]any{celVariable: r.celProperties(s)})
		cost := uint64(MaxCELCost)
		if err == nil && det != nil && det.ActualCost() != nil {
			cost = *det.ActualCost()
		}
		r.celSpent += cost
		v := err == nil && out == types.True
		r.celResults[k] = v
		return v
	case predAll:
		for _, c := range p.children {
			if !r.passes(c, s) {
				return false
			}
		}
		return true
	case predAny:
		for _, c := range p.children {
			if r.passes(c, s) {
				return true
			}
		}
		return false
	case predNot:
		for _, c := range p.children {
			if r.passes(c, s) {
				return false
			}
		}
		return true
	}
	return false
}

// labelsOf returns the olm.label values of a bundle.
func (r *resolver) labelsOf(b *catalog.Bundle) []string {
	if b == nil {
		return nil
	}
	if ls, ok := r.labels[b]; ok {
		return ls
	}
	var ls []string
	for _, p := range b.Properties {
		if p.Type != catalog.PropertyLabel {
			continue
		}
		var v struct {
			Label string `json:"label"`
		}
		if json.Unmarshal(p.Value, &v) == nil && v.Label != "" {
			ls = append(ls, v.Label)
		}
	}
	r.labels[b] = ls
	return ls
}

// celProperties is the properties variable of a candidate: its bundle's
// properties, or for an installed bundle no catalog has, its package and
// the APIs it provides.
func (r *resolver) celProperties(s subject) []any {
	if s.bundle == nil {
		out := []any{map[string]any{"type": catalog.PropertyPackage, "value": map[string]any{"packageName": s.pkg, "version": s.version.String()}}}
		for _, g := range s.provides {
			out = append(out, map[string]any{"type": catalog.PropertyGVK, "value": map[string]any{"group": g.Group, "version": g.Version, "kind": g.Kind}})
		}
		return out
	}
	if v, ok := r.celProps[s.bundle]; ok {
		return v
	}
	out := make([]any, 0, len(s.bundle.Properties))
	for _, p := range s.bundle.Properties {
		var v any
		if err := json.Unmarshal(p.Value, &v); err != nil {
			v = string(p.Value)
		}
		out = append(out, map[string]any{"type": p.Type, "value": v})
	}
	r.celProps[s.bundle] = out
	return out
}

// constraintRequirements adds a requirement for every constraint the node's
// bundle declares. gvk and package constraints are the requirements
// olm.gvk.required and olm.package.required make; the others are met by
// any bundle, placed in the node's scope, that passes the predicate.
func (r *resolver) constraintRequirements(n *node) {
	for _, bc := range r.constraintsOf(n.bundle) {
		q := &requirement{owner: n, constraint: bc}
		switch {
		case bc.err != nil:
		case bc.pred.kind == predGVK:
			q.isGVK, q.gvk = true, bc.pred.gvk
			r.gvkOptions(q)
		case bc.pred.kind == predPackage:
			q.pkg, q.rngText, q.rng = bc.pred.pkg, bc.pred.rngText, bc.pred.rng
			r.packageOptions(q)
		default:
			r.predicateOptions(q)
		}
		n.reqs = append(n.reqs, q)
	}
}

// predicateOptions finds the bundles that pass a requirement's predicate,
// with the same rules as a package requirement: a package held by
// subscriptions offers their candidates, one held by an installed operator
// offers that operator, any other offers its bundles in every catalog.
func (r *resolver) predicateOptions(q *requirement) {
	scope := q.owner.scope
	pred := q.constraint.pred
	r.celOverBudget = false
	defer func() {
		if r.celOverBudget {
			q.options, q.held, q.truncated = nil, nil, 0
			q.evalErr = fmt.Errorf("%w: the resolution spent its CEL budget (cost %d) before every bundle was tested", ErrConstraint, MaxCELTotalCost)
		}
	}()
	// held notes a package whose bundles pass but which subscriptions or
	// an installed operator hold to versions that do not.
	held := func(pkg, why string) {
		if len(q.held) >= maxHeldNotes {
			return
		}
		for _, pb := range r.byPackage[pkg] {
			if r.matchesBundle(pred, pb.b) {
				q.held = append(q.held, fmt.Sprintf("%s passes, but %s", pb.b.Package+" "+pb.b.Version.String(), why))
				return
			}
		}
	}
	for _, pkg := range r.packageNames(scope) {
		sp := scopePkg{scope, pkg}
		if subs := r.governed[sp]; len(subs) > 0 {
			n := len(q.options)
			for _, s := range subs {
				for _, c := range s.cands {
					if r.matches(pred, c) && !slices.Contains(q.options, c) {
						q.options = append(q.options, c)
					}
				}
			}
			if len(q.options) == n {
				keys := make([]string, len(subs))
				for i, s := range subs {
					keys[i] = s.key
				}
				held(pkg, fmt.Sprintf("%s does not allow it", subsList(keys)))
			}
			continue
		}
		if f := r.fixed[sp]; f != nil {
			if r.matches(pred, f) {
				q.options = append(q.options, f)
			} else {
				held(pkg, fmt.Sprintf("%s is installed in %s", f, scopeName(scope)))
			}
			continue
		}
		for _, pb := range r.byPackage[pkg] {
			if r.matchesBundle(pred, pb.b) {
				q.options = append(q.options, r.nodeFor(scope, pb.s, pb.b))
			}
		}
	}
	r.sortOptions(q.owner.cat, q.options)
	if len(q.options) > MaxConstraintOptions {
		q.truncated = len(q.options) - MaxConstraintOptions
		q.options = q.options[:MaxConstraintOptions:MaxConstraintOptions]
	}
}

// packageNames lists, sorted, every package a catalog has or that is
// installed or subscribed to in the scope.
func (r *resolver) packageNames(scope string) []string {
	if names, ok := r.pkgNames[scope]; ok {
		return names
	}
	var names []string
	for p := range r.byPackage {
		names = append(names, p)
	}
	for sp := range r.governed {
		if sp.scope == scope {
			names = append(names, sp.pkg)
		}
	}
	for sp := range r.fixed {
		if sp.scope == scope {
			names = append(names, sp.pkg)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	r.pkgNames[scope] = names
	return names
}

// constraintWhat renders a constraint requirement: what it asks for, the
// property that declares it and the bundle's own failure message.
func (q *requirement) constraintWhat() string {
	bc := q.constraint
	var s string
	switch {
	case bc.err != nil:
		s = "the constraint of " + bc.field
	case bc.pred.kind == predGVK:
		s = "API " + bc.pred.gvk.String()
	case bc.pred.kind == predPackage:
		s = bc.pred.pkg + " " + bc.pred.rngText
	case bc.pred.kind == predLabel:
		s = fmt.Sprintf("a bundle with label %q", bc.pred.label)
	default:
		s = "a bundle matching " + bc.pred.String()
	}
	if bc.failure != "" {
		s += fmt.Sprintf(" (%q)", bc.failure)
	}
	return s
}

// constraintErr says why a constraint requirement cannot be evaluated, or nil.
func (q *requirement) constraintErr() error {
	switch {
	case q.constraint == nil:
		return nil
	case q.constraint.err != nil:
		return q.constraint.err
	}
	return q.evalErr
}
