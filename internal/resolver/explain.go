package resolver

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ferrydev/ferry/internal/catalog"
)

// joinFacts renders a chain of facts as one sentence.
func joinFacts(facts []string) string { return strings.Join(facts, "; ") }

// deadProof renders why a node can never be installed: the requirement with
// no possible option and, for each option, why it cannot be installed.
func (r *resolver) deadProof(n *node, _ int) []string {
	var facts []*requirement
	seen := map[*node]bool{}
	var walk func(n *node)
	walk = func(n *node) {
		if seen[n] {
			return
		}
		seen[n] = true
		q := n.deadWhy
		facts = append(facts, q)
		for _, o := range q.options {
			walk(o)
		}
	}
	walk(n)
	return r.renderReqs(facts, nil)
}

// renderReqs renders requirement facts, merging those that differ only by
// the version of the bundle that has them: "etcd 0.9.4 and 0.9.3 require …".
func (r *resolver) renderReqs(reqs []*requirement, p *problem) []string {
	type key struct{ pkg, what, tail string }
	var order []key
	owners := map[key][]*requirement{}
	for _, q := range reqs {
		k := key{q.owner.pkg, q.what(), r.reqTail(q, p)}
		if owners[k] == nil {
			order = append(order, k)
		}
		owners[k] = append(owners[k], q)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		qs := owners[k]
		if len(qs) == 1 {
			out = append(out, qs[0].String()+k.tail)
			continue
		}
		vs := make([]string, len(qs))
		for i, q := range qs {
			vs[i] = q.owner.version.String()
		}
		out = append(out, fmt.Sprintf("%s %s require %s%s", k.pkg, joinAnd(vs), k.what, k.tail))
	}
	return out
}

// reqTail says what meets a requirement, or why nothing does.
func (r *resolver) reqTail(q *requirement, p *problem) string {
	if err := q.constraintErr(); err != nil {
		return ", but it cannot be evaluated: " + strings.TrimPrefix(err.Error(), ErrConstraint.Error()+": ")
	}
	opts := q.options
	if p != nil {
		opts = p.opts(opts)
	}
	if len(opts) > 0 {
		tail := " (met by " + nodeList(opts) + ")"
		if q.truncated > 0 {
			tail = fmt.Sprintf(" (met by %s; %d less preferred bundles not considered)", nodeList(opts), q.truncated)
		}
		return tail
	}
	switch {
	case q.constraint != nil && !q.isGVK && q.pkg == "" && len(q.options) > 0:
		return fmt.Sprintf(", but none of the bundles that match it (%s) can be installed", nodeList(q.options))
	case q.constraint != nil && !q.isGVK && q.pkg == "" && len(q.held) > 0:
		return ", but no bundle that can be chosen matches it: " + strings.Join(q.held, "; ")
	case q.constraint != nil && !q.isGVK && q.pkg == "":
		return ", but no bundle matches it"
	case len(q.governedSubs) > 0:
		var parts []string
		for _, s := range q.governedSubs {
			if len(s.cands) == 0 {
				parts = append(parts, fmt.Sprintf("subscription %s has no candidate", s.key))
				continue
			}
			parts = append(parts, fmt.Sprintf("subscription %s allows %s only", s.key, nodeList(s.cands)))
		}
		return ", but " + strings.Join(parts, " and ")
	case q.governedFixed != nil:
		return fmt.Sprintf(", but %s is installed in %s", q.governedFixed, scopeName(q.owner.scope))
	case q.isGVK && len(q.options) > 0:
		return fmt.Sprintf(", but none of its providers (%s) can be installed", nodeList(q.options))
	case q.isGVK:
		return ", but no catalog provides it"
	}
	if len(q.options) > 0 {
		return fmt.Sprintf(", but none of %s can be installed", nodeList(q.options))
	}
	var parts []string
	for _, s := range r.cats {
		p := s.Catalog.Package(q.pkg)
		if p == nil {
			continue
		}
		vs := make([]string, len(p.Bundles))
		for i, b := range p.Bundles {
			vs[i] = b.Version.String()
		}
		parts = append(parts, fmt.Sprintf("catalog %q has %s %s only", s.Name, q.pkg, joinAnd(vs)))
	}
	if len(parts) == 0 {
		return fmt.Sprintf(", but no catalog has package %q", q.pkg)
	}
	return ", but " + joinAnd(parts)
}

func scopeName(ns string) string {
	if ns == "" {
		return "the cluster scope"
	}
	return fmt.Sprintf("namespace %q", ns)
}

// nodeList renders "prometheus 2.1.0 and 2.0.0" or "a 1.0.0 and b 2.0.0".
func nodeList(ns []*node) string {
	const max = 5
	samePkg := true
	for _, n := range ns {
		samePkg = samePkg && n.pkg == ns[0].pkg
	}
	var items []string
	for i, n := range ns {
		if i == max {
			items = append(items, fmt.Sprintf("%d more", len(ns)-max))
			break
		}
		s := n.String()
		if samePkg && i > 0 {
			s = n.version.String()
		}
		items = append(items, s)
	}
	return joinAnd(items)
}

// render turns the groups of a minimal unsatisfiable set into facts, in
// order from the subscriptions outwards.
func (r *resolver) render(p *problem, gs []*group, keepSingleSub bool) []string {
	gs = slices.Clone(gs)
	slices.SortStableFunc(gs, func(a, b *group) int {
		return cmp.Or(cmp.Compare(a.depth, b.depth), cmp.Compare(a.kind, b.kind), cmp.Compare(a.seq, b.seq))
	})
	var out []string
	var reqs []*requirement
	flush := func() {
		out = append(out, r.renderReqs(reqs, p)...)
		reqs = nil
	}
	for _, g := range gs {
		if g.kind != gReq {
			flush()
		}
		switch g.kind {
		case gSub:
			cands := p.opts(g.sub.cands)
			if len(cands) == 1 && !keepSingleSub {
				continue
			}
			out = append(out, fmt.Sprintf("subscription %s allows %s only", g.sub.key, nodeList(cands)))
		case gChosen:
			if g.root != nil {
				out = append(out, fmt.Sprintf("%s is chosen for subscription %s", g.node, g.root.key))
			} else {
				out = append(out, fmt.Sprintf("%s is chosen", g.node))
			}
		case gInstalled:
			out = append(out, fmt.Sprintf("%s is installed in %s", g.node, scopeName(g.node.scope)))
		case gReq:
			reqs = append(reqs, g.req)
		case gPkgOne:
			out = append(out, fmt.Sprintf("only one version of %s can be installed in %s", g.sp.pkg, scopeName(g.sp.scope)))
		case gGVKOne:
			var fixed []string
			for _, n := range g.nodes {
				if n.fixed {
					fixed = append(fixed, fmt.Sprintf("%s in %s", n, scopeName(n.scope)))
				}
			}
			if len(fixed) > 0 {
				out = append(out, fmt.Sprintf("%s already provides API %s, and only one package may provide an API in the cluster", joinAnd(fixed), g.gvk))
				continue
			}
			var pkgs []string
			for _, n := range g.nodes {
				if !slices.Contains(pkgs, n.pkg) {
					pkgs = append(pkgs, n.pkg)
				}
			}
			out = append(out, fmt.Sprintf("API %s is provided by both %s, and only one package may provide an API in the cluster", g.gvk, joinAnd(pkgs)))
		}
	}
	flush()
	return out
}

// explainAlone explains a subscription that cannot be satisfied even on its own.
func (r *resolver) explainAlone(s *subState) *Explanation {
	head := fmt.Sprintf("no version of %s can be installed", s.sub.Package)
	live := r.liveOptions(s.cands)
	if len(live) == 0 {
		// Every candidate misses a dependency, whatever else is chosen.
		var reqs []*requirement
		seen := map[*node]bool{}
		var walk func(n *node)
		walk = func(n *node) {
			if seen[n] {
				return
			}
			seen[n] = true
			reqs = append(reqs, n.deadWhy)
			for _, o := range n.deadWhy.options {
				walk(o)
			}
		}
		for _, c := range s.cands {
			walk(c)
		}
		facts := r.renderReqs(reqs, nil)
		code := CodeConstraint
		for _, c := range s.cands {
			if c.deadWhy.constraint == nil {
				code = CodeDependency
			}
		}
		return &Explanation{Code: code, Message: joinFacts(facts), Facts: facts}
	}
	p := r.buildProblem([]*subState{s}, true)
	mus := p.minimal(nil, p.base(s))
	facts := r.render(p, mus, false)
	code := CodeDependency
	for _, g := range mus {
		if g.kind == gPkgOne || g.kind == gGVKOne || g.kind == gInstalled {
			code = CodeConflict
		}
	}
	return &Explanation{Code: code, Message: head + ": " + joinFacts(facts), Facts: facts}
}

// explainLinked explains subscriptions that each can be satisfied but not together.
func (r *resolver) explainLinked(subs []*subState) {
	p := r.buildProblem(subs, true)
	mus := p.minimal(nil, p.base(subs...))
	facts := r.render(p, mus, true)
	var links []string
	for _, g := range mus {
		switch g.kind {
		case gPkgOne:
			links = append(links, fmt.Sprintf("package %s in %s", g.sp.pkg, scopeName(g.sp.scope)))
		case gGVKOne:
			links = append(links, "API "+g.gvk.String())
		}
	}
	keys := make([]string, len(subs))
	for i, s := range subs {
		keys[i] = s.key
	}
	link := joinAnd(links)
	for _, s := range subs {
		var others []string
		for _, k := range keys {
			if k != s.key {
				others = append(others, k)
			}
		}
		msg := fmt.Sprintf("subscriptions %s cannot be satisfied together", joinAnd(keys))
		if link != "" {
			msg += ", linked by " + link
		}
		s.decision = r.unsatisfiable(s, fmt.Sprintf("cannot be installed together with %s (linked by %s)", subsList(others), link), &Explanation{
			Code: CodeLinkedConflict, Message: msg + ": " + joinFacts(facts), Facts: facts, Linked: others, Link: link,
		})
	}
}

// explainRejected says why a candidate was passed over: with the choices
// made before it (st, upTo), or on its own when st is nil.
func (r *resolver) explainRejected(s *subState, st *state, c *node, upTo int, linked string) (Reason, string) {
	if linked != "" {
		return ReasonConflict, linked
	}
	cur := &state{pkgSel: map[scopePkg]*node{}, gvk: map[catalog.GVK]*node{}}
	if st != nil {
		cur = &state{pkgSel: pkgSelOf(st, upTo), gvk: gvkOf(st, upTo)}
	}
	{
		if clash, gvk := r.consistent(cur, c); clash != nil {
			if gvk != nil {
				return ReasonConflict, fmt.Sprintf("conflicts with %s which already provides API %s", clash, gvk)
			}
			how := "is chosen"
			if clash.installed {
				how = "is installed"
			}
			return ReasonConflict, fmt.Sprintf("conflicts with %s which %s in %s", clash, how, scopeName(clash.scope))
		}
	}
	subs := []*subState{s}
	if st != nil {
		subs = st.subs
	}
	p := r.buildProblem(subs, false)
	var units []*group
	if st != nil {
		for _, n := range st.order[:upTo] {
			if _, ok := p.vars[n]; !ok {
				continue
			}
			units = append(units, p.unitGroup(gChosen, n, st.sel[n]))
		}
	}
	assume := p.unitGroup(gAssume, c, nil)
	mus := p.minimal([]*group{assume}, concat(p.base(), units))
	facts := r.render(p, mus, true)
	for _, g := range mus {
		if g.kind == gGVKOne || g.kind == gChosen || g.kind == gInstalled {
			return ReasonConflict, "conflicts: " + joinFacts(facts)
		}
	}
	for _, g := range mus {
		if g.kind == gPkgOne {
			return ReasonDependency, "its dependencies conflict: " + joinFacts(facts)
		}
	}
	for _, g := range mus {
		if g.kind == gReq && g.node == c {
			why := ReasonDependency
			if g.req.constraint != nil {
				why = ReasonConstraint
			}
			return why, "its dependency " + g.req.what() + " cannot be met: " + joinFacts(facts)
		}
	}
	return ReasonDependency, "its dependencies cannot be met: " + joinFacts(facts)
}

func pkgSelOf(st *state, upTo int) map[scopePkg]*node {
	m := map[scopePkg]*node{}
	for _, n := range st.order[:upTo] {
		m[scopePkg{n.scope, n.pkg}] = n
	}
	return m
}

func gvkOf(st *state, upTo int) map[catalog.GVK]*node {
	m := map[catalog.GVK]*node{}
	for _, n := range st.order[:upTo] {
		for _, g := range n.provides {
			if m[g] == nil {
				m[g] = n
			}
		}
	}
	return m
}

func subsList(keys []string) string {
	if len(keys) == 1 {
		return "subscription " + keys[0]
	}
	return "subscriptions " + joinAnd(keys)
}

// candidateReasons is the bounded view of a decision's candidates: the
// target, then the candidates passed over (Rejected after the first
// upFront entries), then those filtered out up front. It returns how many
// entries were left out.
func candidateReasons(d *Decision, upFront int) ([]CandidateReason, int) {
	total := len(d.Rejected)
	if d.Target != nil {
		total++
	}
	out := make([]CandidateReason, 0, min(total, MaxCandidateReasons))
	add := func(c CandidateReason) {
		if len(out) < MaxCandidateReasons {
			c.Message = truncateMessage(c.Message, MaxCandidateMessageBytes)
			out = append(out, c)
		}
	}
	if t := d.Target; t != nil {
		msg := "chosen: " + string(d.Edge.Kind)
		if d.Edge.From != "" {
			msg += " from " + d.Edge.From
		}
		add(CandidateReason{Catalog: t.Catalog, Bundle: t.Bundle, Version: t.Version, Chosen: true, Message: msg})
	}
	upFront = min(upFront, len(d.Rejected))
	for _, part := range [2][]Rejection{d.Rejected[upFront:], d.Rejected[:upFront]} {
		for i := range part {
			if len(out) == MaxCandidateReasons {
				break
			}
			rej := &part[i]
			add(CandidateReason{Catalog: rej.Catalog, Bundle: rej.Bundle, Version: rej.Version, Reason: rej.Reason, Message: rej.Message})
		}
	}
	return out, total - len(out)
}

// truncateMessage cuts s to at most limit bytes at a character boundary,
// ending in "…" when cut.
func truncateMessage(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ellipsis = "…"
	cut := limit - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
