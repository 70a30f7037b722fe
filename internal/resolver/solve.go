package resolver

import (
	"fmt"
	"slices"

	"github.com/blang/semver/v4"

	"github.com/ferrydev/ferry/internal/catalog"
)

// solveAll splits the subscriptions into components linked by dependencies
// and solves each on its own.
func (r *resolver) solveAll() error {
	uf := newUnionFind()
	key := map[string]int{}
	keyID := func(k string) int {
		if id, ok := key[k]; ok {
			return id
		}
		id := -1 - len(key)
		key[k] = id
		return id
	}
	const subBase = 1 << 40
	visited := map[*node]bool{}
	var queue []*node
	visit := func(n *node) {
		if !visited[n] {
			visited[n] = true
			queue = append(queue, n)
		}
	}
	for _, s := range r.subs {
		if s.fail != nil {
			continue
		}
		for _, c := range r.liveOptions(s.cands) {
			uf.union(subBase+s.idx, c.idx)
			visit(c)
		}
	}
	for i := 0; i < len(queue); i++ {
		if i%256 == 0 {
			if err := r.ctx.Err(); err != nil {
				return err
			}
		}
		n := queue[i]
		uf.union(n.idx, keyID("p\x00"+n.scope+"\x00"+n.pkg))
		for _, g := range n.provides {
			uf.union(n.idx, keyID("g\x00"+g.String()))
		}
		if n.installed {
			continue
		}
		for _, q := range r.requirements(n) {
			if q.isGVK {
				uf.union(n.idx, keyID("g\x00"+q.gvk.String()))
			}
			for _, o := range r.liveOptions(q.options) {
				uf.union(n.idx, o.idx)
				visit(o)
			}
		}
	}
	comps := map[int][]*subState{}
	var order []int
	for _, s := range r.subs {
		if s.fail != nil {
			s.decision = r.unsatisfiable(s, "", s.fail)
			continue
		}
		root := uf.find(subBase + s.idx)
		if comps[root] == nil {
			order = append(order, root)
		}
		comps[root] = append(comps[root], s)
	}
	for _, root := range order {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		r.solveComponent(comps[root])
	}
	return nil
}

type unionFind struct{ parent map[int]int }

func newUnionFind() *unionFind { return &unionFind{parent: map[int]int{}} }

func (u *unionFind) find(x int) int {
	p, ok := u.parent[x]
	if !ok {
		return x
	}
	if p == x {
		return x
	}
	r := u.find(p)
	u.parent[x] = r
	return r
}

func (u *unionFind) union(a, b int) {
	ra, rb := u.find(a), u.find(b)
	if ra == rb {
		return
	}
	// Keep the smaller id as root so that the result does not depend on map order.
	if rb < ra {
		ra, rb = rb, ra
	}
	u.parent[ra] = ra
	u.parent[rb] = ra
}

// solveComponent solves linked subscriptions together. Subscriptions that
// cannot be satisfied even alone fail alone; subscriptions that can each be
// satisfied but not together fail together, naming the link.
func (r *resolver) solveComponent(subs []*subState) {
	active := subs
	var prob *problem
	for len(active) > 0 {
		st := r.decide(active, nil)
		if st == nil {
			prob = r.buildProblem(active, true)
			st = r.decide(active, prob)
		}
		if st != nil {
			targets := make(map[*node]bool, len(active))
			for _, s := range active {
				targets[st.subPick[s]] = true
			}
			for _, s := range active {
				s.decision = r.record(s, st, targets)
			}
			return
		}
		if prob == nil {
			prob = r.buildProblem(active, true)
		}
		var rest []*subState
		for _, s := range active {
			if r.decide([]*subState{s}, nil) != nil || prob.sat(prob.base(s)) {
				rest = append(rest, s)
				continue
			}
			s.decision = r.unsatisfiable(s, "", r.explainAlone(s))
		}
		if len(rest) < len(active) {
			active, prob = rest, nil
			continue
		}
		conflict := r.minimalConflict(prob, active)
		r.explainLinked(conflict)
		active = slices.DeleteFunc(slices.Clone(active), func(s *subState) bool { return slices.Contains(conflict, s) })
		prob = nil
	}
}

// minimalConflict returns a smallest-first set of subscriptions that cannot
// be satisfied together: the first prefix that fails, reduced by deletion.
func (r *resolver) minimalConflict(p *problem, active []*subState) []*subState {
	k := 1
	for ; k < len(active); k++ {
		if !p.sat(p.base(active[:k+1]...)) {
			break
		}
	}
	last := active[k]
	keep := slices.Clone(active[:k])
	for i := 0; i < len(keep); {
		try := slices.Delete(slices.Clone(keep), i, i+1)
		if !p.sat(p.base(append(try, last)...)) {
			keep = try
			continue
		}
		i++
	}
	return append(keep, last)
}

// choice is one decision: a subscription's target or a requirement's option.
type choice struct {
	sub  *subState
	req  *requirement
	root *subState
}

// state is a partial selection.
type state struct {
	sel     map[*node]*subState // selected node -> the subscription whose chain chose it
	pkgSel  map[scopePkg]*node
	gvk     map[catalog.GVK]*node
	pick    map[*requirement]*node
	subPick map[*subState]*node
	order   []*node
	// tried records candidates of a subscription passed over before its
	// target, with how many nodes were selected at that moment.
	tried map[*subState][]tried
	// subs are the subscriptions decided together.
	subs []*subState
}

type tried struct {
	n    *node
	upTo int
}

// consistent checks a node against the selection so far; it returns the
// node it clashes with and the API, if any.
func (r *resolver) consistent(st *state, o *node) (*node, *catalog.GVK) {
	sp := scopePkg{o.scope, o.pkg}
	if cur := st.pkgSel[sp]; cur != nil && cur != o {
		return cur, nil
	}
	if f := r.fixed[sp]; f != nil && f != o {
		return f, nil
	}
	for i, g := range o.provides {
		if fp := r.fixedProviders[g]; len(fp) > 0 {
			if !slices.ContainsFunc(fp, func(f *node) bool { return f.pkg == o.pkg }) {
				return fp[0], &o.provides[i]
			}
			continue
		}
		if cur := st.gvk[g]; cur != nil && cur.pkg != o.pkg {
			return cur, &o.provides[i]
		}
	}
	return nil, nil
}

// decide makes the choices in order, each time taking the most preferred
// option that fits. Without p it is greedy and gives up at the first dead
// end; with p each option is first proven to extend to a full solution, so
// it fails only when there is none. When greedy succeeds, both agree: every
// option greedy passed over clashed with earlier choices.
func (r *resolver) decide(subs []*subState, p *problem) *state {
	st := &state{
		sel: map[*node]*subState{}, pkgSel: map[scopePkg]*node{}, gvk: map[catalog.GVK]*node{},
		pick: map[*requirement]*node{}, subPick: map[*subState]*node{}, tried: map[*subState][]tried{},
		subs: subs,
	}
	var base []*group
	if p != nil {
		base = p.base(subs...)
	}
	queue := make([]choice, 0, len(subs)*2)
	for _, s := range subs {
		queue = append(queue, choice{sub: s, root: s})
	}
	for i := 0; i < len(queue); i++ {
		c := queue[i]
		var opts []*node
		if c.sub != nil {
			opts = r.liveOptions(c.sub.cands)
		} else {
			opts = r.liveOptions(c.req.options)
		}
		var chosen *node
		for _, o := range opts {
			if _, ok := st.sel[o]; ok || o.fixed {
				chosen = o
				break
			}
		}
		if chosen == nil {
			for _, o := range opts {
				if clash, _ := r.consistent(st, o); clash != nil {
					if c.sub != nil {
						st.tried[c.sub] = append(st.tried[c.sub], tried{o, len(st.order)})
					}
					continue
				}
				if p != nil {
					units := make([]*group, 0, len(st.order)+1)
					for _, n := range st.order {
						units = append(units, p.unitGroup(gChosen, n, nil))
					}
					units = append(units, p.unitGroup(gAssume, o, nil))
					if !p.sat(concat(base, units)) {
						if c.sub != nil {
							st.tried[c.sub] = append(st.tried[c.sub], tried{o, len(st.order)})
						}
						continue
					}
				}
				chosen = o
				break
			}
			if chosen == nil {
				return nil
			}
			st.sel[chosen] = c.root
			st.order = append(st.order, chosen)
			st.pkgSel[scopePkg{chosen.scope, chosen.pkg}] = chosen
			for _, g := range chosen.provides {
				if st.gvk[g] == nil {
					st.gvk[g] = chosen
				}
			}
			if !chosen.installed {
				for _, q := range r.requirements(chosen) {
					queue = append(queue, choice{req: q, root: c.root})
				}
			}
		}
		if c.sub != nil {
			st.subPick[c.sub] = chosen
		} else {
			st.pick[c.req] = chosen
		}
	}
	return st
}

// record turns a solved state into the subscription's Decision.
func (r *resolver) record(s *subState, st *state, targets map[*node]bool) *Decision {
	t := st.subPick[s]
	d := &Decision{Subscription: s.key, Warnings: slices.Clone(s.warnings)}
	d.Target = &Target{Catalog: t.cat, Package: t.pkg, Bundle: t.name, Version: t.version, Channel: s.ch.Name}
	d.Edge = Edge{Kind: s.edges[t]}
	switch {
	case t == s.stay:
		d.Status = StatusUpToDate
	case s.edges[t] == EdgeDowngrade:
		d.Status = StatusDowngrade
	case s.stay != nil:
		d.Status = StatusUpgrade
	default:
		d.Status = StatusInstall
	}
	d.Latest, d.OutsideRange = s.latest, s.inst != nil && !s.rng(s.inst.Version)
	if s.stay != nil {
		d.Edge.From = s.instName
	}
	if t.deprecated != "" {
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s is deprecated: %s", t, t.deprecated))
	}
	if d.Status == StatusUpgrade && s.sub.Approval == ApprovalManual {
		d.NeedsApproval = s.sub.ApprovedVersion != t.version.String() && s.sub.ApprovedVersion != "v"+t.version.String()
	}
	if s.sub.Approval == ApprovalManual && s.sub.ApprovedVersion != "" && s.inst != nil && !approves(s.sub.ApprovedVersion, t.version) && !approves(s.sub.ApprovedVersion, s.inst.Version) {
		d.ApprovedUnreachable = s.approvedNote
		if d.ApprovedUnreachable == "" {
			d.ApprovedUnreachable = fmt.Sprintf("approvedVersion %s was not chosen: %s is", s.sub.ApprovedVersion, t)
		}
	}
	// Dependencies: what the target's requirements picked, transitively,
	// that is neither installed nor another subscription's target.
	seen := map[*node]bool{t: true}
	queue := []*node{t}
	for i := 0; i < len(queue); i++ {
		n := queue[i]
		if n.installed {
			continue
		}
		for _, q := range r.requirements(n) {
			o := st.pick[q]
			if o == nil || seen[o] || o.installed || targets[o] {
				continue
			}
			seen[o] = true
			queue = append(queue, o)
			d.Dependencies = append(d.Dependencies, Dependency{
				Catalog: o.cat, Package: o.pkg, Bundle: o.name, Version: o.version, Namespace: o.scope, RequiredBy: q.String(),
			})
		}
	}
	d.Rejected = r.rejections(s, st, t, "")
	return d
}

// rejections gives every candidate that was not chosen a reason, after the
// bundles rejected up front.
func (r *resolver) rejections(s *subState, st *state, t *node, linked string) []Rejection {
	out := slices.Clone(s.rejected)
	triedAt := map[*node]int{}
	if st != nil {
		for _, tr := range st.tried[s] {
			triedAt[tr.n] = tr.upTo
		}
	}
	passed := t == nil
	for _, c := range s.cands {
		if c == t {
			passed = true
			continue
		}
		rej := Rejection{Catalog: c.cat, Bundle: c.name, Version: c.version}
		switch upTo, wasTried := triedAt[c]; {
		case c == s.stay && t != nil:
			rej.Reason, rej.Message = ReasonInstalled, fmt.Sprintf("the installed version; %s is the upgrade", t.version)
		case r.isDead(c):
			rej.Reason, rej.Message = deadReason(c), "its dependency "+c.deadWhy.what()+" cannot be met: "+joinFacts(r.deadProof(c, 0))
		case wasTried:
			rej.Reason, rej.Message = r.explainRejected(s, st, c, upTo, "")
		case t == nil:
			rej.Reason, rej.Message = r.explainRejected(s, nil, c, 0, linked)
		case c.deprecated != "" && (t == nil || t.deprecated == ""):
			rej.Reason, rej.Message = ReasonDeprecated, "deprecated: "+c.deprecated+"; a candidate that is not deprecated was chosen"
		case passed:
			rej.Reason, rej.Message = ReasonNotPreferred, fmt.Sprintf("%s was chosen over it", t)
		default:
			rej.Reason, rej.Message = ReasonNotPreferred, "not chosen"
		}
		out = append(out, rej)
	}
	return out
}

func (r *resolver) unsatisfiable(s *subState, linked string, e *Explanation) *Decision {
	d := &Decision{Subscription: s.key, Status: StatusUnsatisfiable, Explanation: e, Warnings: slices.Clone(s.warnings)}
	if s.fail == nil {
		d.Rejected = r.rejections(s, nil, nil, linked)
	} else {
		d.Rejected = slices.Clone(s.rejected)
	}
	return d
}

// approves reports whether an approved version names v ("1.2.0" or "v1.2.0").
func approves(approved string, v semver.Version) bool {
	return approved == v.String() || approved == "v"+v.String()
}

// deadReason classifies why a node can never be installed by the
// requirement of its own that has no option.
func deadReason(n *node) Reason {
	switch q := n.deadWhy; {
	case q.constraint == nil:
		return ReasonDependency
	case q.constraintErr() != nil:
		return ReasonInvalidConstraint
	}
	return ReasonConstraint
}
