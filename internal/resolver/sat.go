package resolver

import (
	"cmp"
	"slices"

	"github.com/crillab/gophersat/solver"

	"github.com/ferrydev/ferry/internal/catalog"
)

// gkind is the kind of fact a group of constraints encodes.
type gkind int

const (
	gSub       gkind = iota // a subscription needs one of its candidates
	gAssume                 // a candidate is assumed chosen
	gChosen                 // an earlier decision
	gInstalled              // an installed operator stays
	gReq                    // a bundle needs one option of a requirement
	gPkgOne                 // one version of a package per scope
	gGVKOne                 // one package per API in the cluster
)

// group is one human fact and the constraints that encode it.
type group struct {
	kind  gkind
	sub   *subState
	req   *requirement
	sp    scopePkg
	gvk   catalog.GVK
	node  *node
	nodes []*node // gPkgOne, gGVKOne: the nodes involved
	root  *subState
	depth int
	seq   int
	cons  []solver.PBConstr
}

// problem is the constraint encoding of some subscriptions.
type problem struct {
	r      *resolver
	live   bool
	vars   map[*node]int
	nodes  []*node
	depth  map[*node]int
	groups []*group
	subs   map[*subState]*group
	nv     int
	calls  int
}

func (p *problem) opts(opts []*node) []*node {
	if p.live {
		return p.r.liveOptions(opts)
	}
	return opts
}

func (p *problem) add(n *node, d int) {
	if _, ok := p.vars[n]; ok {
		return
	}
	p.nv++
	p.vars[n] = p.nv
	p.depth[n] = d
	p.nodes = append(p.nodes, n)
}

// buildProblem encodes the subscriptions and everything their candidates may
// pull in. With live, bundles that can never be installed are left out.
func (r *resolver) buildProblem(subs []*subState, live bool) *problem {
	p := &problem{r: r, live: live, vars: map[*node]int{}, depth: map[*node]int{}, subs: map[*subState]*group{}}
	for _, s := range subs {
		for _, c := range p.opts(s.cands) {
			p.add(c, 0)
		}
	}
	for i := 0; i < len(p.nodes); i++ {
		n := p.nodes[i]
		d := p.depth[n]
		if f := r.fixed[scopePkg{n.scope, n.pkg}]; f != nil {
			p.add(f, d)
		}
		for _, g := range n.provides {
			for _, f := range r.fixedProviders[g] {
				p.add(f, d)
			}
		}
		if n.installed {
			continue
		}
		for _, q := range r.requirements(n) {
			for _, o := range p.opts(q.options) {
				p.add(o, d+1)
			}
		}
	}
	newGroup := func(g *group) {
		g.seq = len(p.groups)
		p.groups = append(p.groups, g)
	}
	for _, s := range subs {
		lits := []int{}
		for _, c := range p.opts(s.cands) {
			lits = append(lits, p.vars[c])
		}
		g := &group{kind: gSub, sub: s, cons: []solver.PBConstr{solver.PropClause(lits...)}}
		p.subs[s] = g
		newGroup(g)
	}
	byPkg := map[scopePkg][]*node{}
	var pkgOrder []scopePkg
	byGVK := map[catalog.GVK][]*node{}
	var gvkOrder []catalog.GVK
	for _, n := range p.nodes {
		v := p.vars[n]
		sp := scopePkg{n.scope, n.pkg}
		if byPkg[sp] == nil {
			pkgOrder = append(pkgOrder, sp)
		}
		byPkg[sp] = append(byPkg[sp], n)
		for _, g := range n.provides {
			if byGVK[g] == nil {
				gvkOrder = append(gvkOrder, g)
			}
			byGVK[g] = append(byGVK[g], n)
		}
		if n.fixed {
			newGroup(&group{kind: gInstalled, node: n, depth: p.depth[n], cons: []solver.PBConstr{solver.PropClause(v)}})
			continue
		}
		if n.installed {
			continue
		}
		for _, q := range r.requirements(n) {
			lits := []int{-v}
			for _, o := range p.opts(q.options) {
				lits = append(lits, p.vars[o])
			}
			newGroup(&group{kind: gReq, req: q, node: n, depth: p.depth[n] + 1, cons: []solver.PBConstr{solver.PropClause(lits...)}})
		}
	}
	for _, sp := range pkgOrder {
		ns := byPkg[sp]
		if len(ns) < 2 {
			continue
		}
		lits := make([]int, len(ns))
		d := p.depth[ns[0]]
		for i, n := range ns {
			lits[i] = p.vars[n]
			d = min(d, p.depth[n])
		}
		newGroup(&group{kind: gPkgOne, sp: sp, nodes: ns, depth: d, cons: []solver.PBConstr{solver.AtMost(lits, 1)}})
	}
	for _, g := range gvkOrder {
		ns := byGVK[g]
		var fixedPkgs, pkgs []string
		d := p.depth[ns[0]]
		for _, n := range ns {
			d = min(d, p.depth[n])
			if !slices.Contains(pkgs, n.pkg) {
				pkgs = append(pkgs, n.pkg)
			}
			if n.fixed && !slices.Contains(fixedPkgs, n.pkg) {
				fixedPkgs = append(fixedPkgs, n.pkg)
			}
		}
		if len(pkgs) < 2 {
			continue
		}
		grp := &group{kind: gGVKOne, gvk: g, nodes: ns, depth: d}
		if len(fixedPkgs) > 0 {
			// The cluster already has the API: only its packages may provide it.
			for _, n := range ns {
				if !slices.Contains(fixedPkgs, n.pkg) {
					grp.cons = append(grp.cons, solver.PropClause(-p.vars[n]))
				}
			}
		} else {
			aux := map[string]int{}
			var ys []int
			for _, pk := range pkgs {
				p.nv++
				aux[pk] = p.nv
				ys = append(ys, p.nv)
			}
			for _, n := range ns {
				grp.cons = append(grp.cons, solver.PropClause(-p.vars[n], aux[n.pkg]))
			}
			grp.cons = append(grp.cons, solver.AtMost(ys, 1))
		}
		newGroup(grp)
	}
	return p
}

// unitGroup is a fact that a node is chosen.
func (p *problem) unitGroup(kind gkind, n *node, root *subState) *group {
	return &group{kind: kind, node: n, root: root, seq: -1, cons: []solver.PBConstr{solver.PropClause(p.vars[n])}}
}

// sat reports whether the groups admit a solution.
func (p *problem) sat(groups []*group) bool {
	p.calls++
	var cons []solver.PBConstr
	for _, g := range groups {
		cons = append(cons, g.cons...)
	}
	// Make every variable known to the solver.
	cons = append(cons, solver.PropClause(p.nv+1))
	pb := solver.ParsePBConstrs(cons)
	if pb.Status == solver.Unsat {
		return false
	}
	return solver.New(pb).Solve() == solver.Sat
}

// base is every group but the subscriptions' except those of subs.
func (p *problem) base(subs ...*subState) []*group {
	out := make([]*group, 0, len(p.groups))
	for _, g := range p.groups {
		if g.kind == gSub && !slices.Contains(subs, g.sub) {
			continue
		}
		out = append(out, g)
	}
	return out
}

// minimal returns a minimal subset of cands that, with background, has no
// solution (QuickXplain). Earlier cands are kept in preference to later ones,
// so ordering them shallow first yields short chains of facts.
func (p *problem) minimal(background, cands []*group) []*group {
	slices.SortStableFunc(cands, func(a, b *group) int {
		return cmp.Or(cmp.Compare(a.depth, b.depth), cmp.Compare(a.kind, b.kind), cmp.Compare(a.seq, b.seq))
	})
	if len(cands) == 0 || p.sat(concat(background, cands)) {
		return nil
	}
	return p.qx(background, false, cands)
}

func (p *problem) qx(b []*group, delta bool, c []*group) []*group {
	if delta && !p.sat(b) {
		return nil
	}
	if len(c) == 1 {
		return c
	}
	k := len(c) / 2
	c1, c2 := c[:k], c[k:]
	d2 := p.qx(concat(b, c1), len(c1) > 0, c2)
	d1 := p.qx(concat(b, d2), len(d2) > 0, c1)
	return concat(d1, d2)
}

func concat(a, b []*group) []*group {
	out := make([]*group, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}
