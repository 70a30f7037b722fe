package resolver

import (
	"cmp"
	"slices"

	"github.com/blang/semver/v4"

	"github.com/ferrydev/ferry/internal/catalog"
)

// scopePkg is one package in one install scope (namespace).
type scopePkg struct{ scope, pkg string }

type nodeKey struct{ scope, cat, bundle string }

// node is a bundle placed in an install scope: one variable of the search.
type node struct {
	idx        int
	scope      string
	pkg        string
	cat        string
	prio       int
	name       string
	version    semver.Version
	bundle     *catalog.Bundle
	installed  bool // the bundle running in scope now
	inDefault  bool // the bundle is in its package's default channel
	fixed      bool // installed and not governed by a subscription: it stays as is
	deprecated string
	provides   []catalog.GVK

	reqs     []*requirement
	reqsDone bool
	// dead: some requirement can never be met, whatever else is chosen.
	dead    int8 // 0 unknown, 1 alive or in progress, 2 dead
	deadWhy *requirement
	ofSub   []*subState // subscriptions having this node as a candidate
}

func (n *node) String() string { return n.pkg + " " + n.version.String() }

// requirement is one dependency of a node.
type requirement struct {
	owner   *node
	isGVK   bool
	pkg     string
	rngText string
	rng     semver.Range
	gvk     catalog.GVK
	// options that can meet it, most preferred first.
	options []*node
	// governed: the package in this scope is held by subscriptions or by an
	// installed operator, which limit the options.
	governedSubs  []*subState
	governedFixed *node
	// constraint is the olm.constraint or olm.label.required property the
	// requirement comes from; nil for olm.package.required and
	// olm.gvk.required.
	constraint *bundleConstraint
	// truncated counts the bundles that pass the constraint beyond
	// MaxConstraintOptions, left out of options.
	truncated int
	// held says which bundles pass a constraint but cannot be chosen
	// because subscriptions or installed operators hold their packages.
	held []string
	// evalErr says why the constraint could not be evaluated in this
	// resolution (its budget spent); the requirement then has no option.
	evalErr error
}

func (q *requirement) what() string {
	if q.constraint != nil {
		return q.constraintWhat()
	}
	if q.isGVK {
		return "API " + q.gvk.String()
	}
	return q.pkg + " " + q.rngText
}

func (q *requirement) String() string { return q.owner.String() + " requires " + q.what() }

// nodeFor returns the node of a catalog bundle in a scope, creating it.
func (r *resolver) nodeFor(scope string, s *snap, b *catalog.Bundle) *node {
	k := nodeKey{scope, s.Name, b.Name}
	if n := r.nodes[k]; n != nil {
		return n
	}
	n := &node{
		idx: len(r.all), scope: scope, pkg: b.Package, cat: s.Name, prio: s.Priority,
		name: b.Name, version: b.Version, bundle: b, provides: b.ProvidedAPIs,
	}
	if p := s.Catalog.Package(b.Package); p != nil {
		n.inDefault = slices.Contains(b.Channels, p.DefaultChannel)
	}
	if b.Deprecation != nil {
		n.deprecated = b.Deprecation.Message
		if n.deprecated == "" {
			n.deprecated = "deprecated"
		}
	}
	r.nodes[k] = n
	r.all = append(r.all, n)
	return n
}

// syntheticNode stands for an installed bundle no catalog has.
func (r *resolver) syntheticNode(in *Installed) *node {
	k := nodeKey{in.Namespace, "", "installed:" + in.Package}
	if n := r.nodes[k]; n != nil {
		return n
	}
	name := in.Bundle
	n := &node{
		idx: len(r.all), scope: in.Namespace, pkg: in.Package, cat: in.Catalog, name: name,
		version: in.Version, provides: in.Provides, installed: true, reqsDone: true,
	}
	r.nodes[k] = n
	r.all = append(r.all, n)
	return n
}

// requirements computes a node's requirements and their options once.
func (r *resolver) requirements(n *node) []*requirement {
	if n.reqsDone {
		return n.reqs
	}
	n.reqsDone = true
	if n.installed || n.bundle == nil {
		return nil
	}
	for _, pr := range n.bundle.RequiredPackages {
		q := &requirement{owner: n, pkg: pr.PackageName, rngText: pr.VersionRange, rng: r.parseRange(pr.VersionRange)}
		r.packageOptions(q)
		n.reqs = append(n.reqs, q)
	}
	for _, g := range n.bundle.RequiredAPIs {
		q := &requirement{owner: n, isGVK: true, gvk: g}
		r.gvkOptions(q)
		n.reqs = append(n.reqs, q)
	}
	r.constraintRequirements(n)
	return n.reqs
}

func (r *resolver) parseRange(s string) semver.Range {
	if rg, ok := r.ranges[s]; ok {
		return rg
	}
	rg, err := catalog.ParseRange(s)
	if err != nil {
		rg = func(semver.Version) bool { return false }
	}
	r.ranges[s] = rg
	return rg
}

func (r *resolver) packageOptions(q *requirement) {
	sp := scopePkg{q.owner.scope, q.pkg}
	if subs := r.governed[sp]; len(subs) > 0 {
		q.governedSubs = subs
		for _, s := range subs {
			for _, c := range s.cands {
				if q.rng(c.version) && !slices.Contains(q.options, c) {
					q.options = append(q.options, c)
				}
			}
		}
	} else if f := r.fixed[sp]; f != nil {
		q.governedFixed = f
		if q.rng(f.version) {
			q.options = append(q.options, f)
		}
	} else {
		for _, pb := range r.byPackage[q.pkg] {
			if q.rng(pb.b.Version) {
				q.options = append(q.options, r.nodeFor(sp.scope, pb.s, pb.b))
			}
		}
	}
	r.sortOptions(q.owner.cat, q.options)
}

func (r *resolver) gvkOptions(q *requirement) {
	seen := map[*node]bool{}
	add := func(n *node) {
		if !seen[n] {
			seen[n] = true
			q.options = append(q.options, n)
		}
	}
	for _, f := range r.fixedProviders[q.gvk] {
		add(f)
	}
	for _, s := range r.cats {
		for _, b := range s.Catalog.Providers(q.gvk) {
			sp := scopePkg{q.owner.scope, b.Package}
			if subs := r.governed[sp]; len(subs) > 0 {
				for _, sub := range subs {
					for _, c := range sub.cands {
						if c.bundle == b {
							add(c)
						}
					}
				}
				continue
			}
			if r.fixed[sp] != nil {
				continue // the installed one is in fixedProviders when it provides the API
			}
			add(r.nodeFor(sp.scope, s, b))
		}
	}
	r.sortOptions(q.owner.cat, q.options)
}

// sortOptions orders options: installed, not deprecated, in its package's
// default channel, same catalog as the requiring bundle, catalog priority,
// catalog name, highest version, package.
func (r *resolver) sortOptions(sameCat string, opts []*node) {
	slices.SortStableFunc(opts, func(a, b *node) int {
		if c := cmpBool(a.installed, b.installed); c != 0 {
			return c
		}
		if c := cmpBool(a.deprecated == "", b.deprecated == ""); c != 0 {
			return c
		}
		if c := cmpBool(a.inDefault, b.inDefault); c != 0 {
			return c
		}
		if c := cmpBool(a.cat == sameCat, b.cat == sameCat); c != 0 {
			return c
		}
		if c := cmp.Compare(b.prio, a.prio); c != 0 {
			return c
		}
		if c := cmp.Compare(a.cat, b.cat); c != 0 {
			return c
		}
		if c := b.version.Compare(a.version); c != 0 {
			return c
		}
		if c := cmp.Compare(a.pkg, b.pkg); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
}

// cmpBool orders true before false.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// isDead reports whether a node can never be part of a solution because a
// requirement, transitively, has no option. It only ever under-approximates.
func (r *resolver) isDead(n *node) bool {
	switch n.dead {
	case 1:
		return false
	case 2:
		return true
	}
	n.dead = 1
	for _, q := range r.requirements(n) {
		alive := false
		for _, o := range q.options {
			if !r.isDead(o) {
				alive = true
				break
			}
		}
		if !alive {
			n.dead = 2
			n.deadWhy = q
			return true
		}
	}
	return false
}

// liveOptions drops dead nodes.
func (r *resolver) liveOptions(opts []*node) []*node {
	for i, o := range opts {
		if r.isDead(o) {
			out := slices.Clone(opts[:i])
			for _, o2 := range opts[i+1:] {
				if !r.isDead(o2) {
					out = append(out, o2)
				}
			}
			return out
		}
	}
	return opts
}
