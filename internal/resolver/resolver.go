package resolver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/blang/semver/v4"

	"github.com/ferrydev/ferry/internal/catalog"
)

// Errors of a malformed request. Problems of single subscriptions are not
// errors: they are explained in the subscription's Decision.
var (
	ErrNoCatalog             = errors.New("catalog snapshot has no catalog")
	ErrDuplicateCatalog      = errors.New("catalog named twice")
	ErrDuplicateSubscription = errors.New("subscription named twice")
	ErrDuplicateInstalled    = errors.New("package installed twice in one namespace")
)

type snap struct {
	Snapshot
}

type pkgBundle struct {
	s *snap
	b *catalog.Bundle
}

type resolver struct {
	ctx       context.Context
	cats      []*snap // by priority, highest first, then name
	catByName map[string]*snap
	byPackage map[string][]pkgBundle // every catalog's bundles of a package

	installed      map[scopePkg]*Installed
	fixed          map[scopePkg]*node
	fixedProviders map[catalog.GVK][]*node

	subs     []*subState
	governed map[scopePkg][]*subState

	nodes  map[nodeKey]*node
	all    []*node
	ranges map[string]semver.Range

	// Constraints, compiled and evaluated once per resolution.
	bundleCons map[*catalog.Bundle][]*bundleConstraint
	programs   map[string]compiled
	celResults map[celKey]bool
	celProps   map[*catalog.Bundle][]any
	labels     map[*catalog.Bundle][]string
	pkgNames   map[string][]string
	// celSpent is the CEL cost spent so far; celOverBudget is set when an
	// evaluation was refused because MaxCELTotalCost was reached.
	celSpent      uint64
	celOverBudget bool

	// kube is the cluster's Kubernetes version and minKube a bundle's
	// minimum (Request.KubeVersion, Request.MinKubeVersion).
	kube    *semver.Version
	minKube func(catalog string, b *catalog.Bundle) (string, bool)
}

// Resolve decides, for every subscription of the request, what to install or
// upgrade, or explains why nothing can be. The error is non-nil only for a
// malformed request or a cancelled context.
func Resolve(ctx context.Context, req Request) (Result, error) {
	r, err := newResolver(ctx, req)
	if err != nil {
		return Result{}, err
	}
	for _, s := range r.subs {
		r.prepare(s)
	}
	if err := r.solveAll(); err != nil {
		return Result{}, err
	}
	res := Result{Decisions: make([]Decision, len(r.subs))}
	for i, s := range r.subs {
		res.Decisions[i] = *s.decision
		res.Decisions[i].Candidates, res.Decisions[i].CandidatesOmitted = candidateReasons(&res.Decisions[i], len(s.rejected))
	}
	return res, nil
}

func newResolver(ctx context.Context, req Request) (*resolver, error) {
	r := &resolver{
		ctx: ctx, catByName: map[string]*snap{}, byPackage: map[string][]pkgBundle{},
		installed: map[scopePkg]*Installed{}, fixed: map[scopePkg]*node{},
		fixedProviders: map[catalog.GVK][]*node{}, governed: map[scopePkg][]*subState{},
		nodes: map[nodeKey]*node{}, ranges: map[string]semver.Range{},
		bundleCons: map[*catalog.Bundle][]*bundleConstraint{}, programs: map[string]compiled{},
		celResults: map[celKey]bool{}, celProps: map[*catalog.Bundle][]any{},
		labels: map[*catalog.Bundle][]string{}, pkgNames: map[string][]string{},
		kube: req.KubeVersion, minKube: req.MinKubeVersion,
	}
	var errs []error
	for _, c := range req.Catalogs {
		if c.Catalog == nil {
			errs = append(errs, fmt.Errorf("%w: %q", ErrNoCatalog, c.Name))
			continue
		}
		if r.catByName[c.Name] != nil {
			errs = append(errs, fmt.Errorf("%w: %q", ErrDuplicateCatalog, c.Name))
			continue
		}
		s := &snap{c}
		r.catByName[c.Name] = s
		r.cats = append(r.cats, s)
	}
	slices.SortStableFunc(r.cats, func(a, b *snap) int {
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	for _, s := range r.cats {
		for _, p := range s.Catalog.Packages {
			for _, b := range p.Bundles {
				r.byPackage[p.Name] = append(r.byPackage[p.Name], pkgBundle{s, b})
			}
		}
	}
	for i := range req.Installed {
		in := &req.Installed[i]
		sp := scopePkg{in.Namespace, in.Package}
		if r.installed[sp] != nil {
			errs = append(errs, fmt.Errorf("%w: %s in namespace %q", ErrDuplicateInstalled, in.Package, in.Namespace))
			continue
		}
		r.installed[sp] = in
	}
	seen := map[string]bool{}
	for i, sub := range req.Subscriptions {
		if seen[sub.Key()] {
			errs = append(errs, fmt.Errorf("%w: %q", ErrDuplicateSubscription, sub.Key()))
			continue
		}
		seen[sub.Key()] = true
		s := &subState{idx: i, sub: sub, key: sub.Key()}
		r.subs = append(r.subs, s)
		sp := scopePkg{sub.Namespace, sub.Package}
		r.governed[sp] = append(r.governed[sp], s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Installed operators without a subscription stay as they are.
	keys := make([]scopePkg, 0, len(r.installed))
	for sp := range r.installed {
		keys = append(keys, sp)
	}
	slices.SortFunc(keys, func(a, b scopePkg) int {
		return cmp.Or(cmp.Compare(a.scope, b.scope), cmp.Compare(a.pkg, b.pkg))
	})
	for _, sp := range keys {
		if len(r.governed[sp]) > 0 {
			continue
		}
		n := r.installedNode(r.installed[sp], nil)
		n.fixed = true
		r.fixed[sp] = n
		for _, g := range n.provides {
			r.fixedProviders[g] = append(r.fixedProviders[g], n)
		}
	}
	return r, nil
}

// installedNode finds the installed bundle in its own catalog, then in the
// preferred catalog, then in any; without one it is a synthetic node.
func (r *resolver) installedNode(in *Installed, prefer *snap) *node {
	try := []*snap{}
	if s := r.catByName[in.Catalog]; s != nil {
		try = append(try, s)
	}
	if prefer != nil {
		try = append(try, prefer)
	}
	try = append(try, r.cats...)
	for _, s := range try {
		p := s.Catalog.Package(in.Package)
		if p == nil {
			continue
		}
		var b *catalog.Bundle
		if in.Bundle != "" {
			b = p.Bundle(in.Bundle)
		} else {
			b = p.BundleByVersion(in.Version)
		}
		if b != nil && b.Version.EQ(in.Version) {
			n := r.nodeFor(in.Namespace, s, b)
			n.installed = true
			return n
		}
	}
	return r.syntheticNode(in)
}

// subState is the working state of one subscription.
type subState struct {
	idx int
	sub Subscription
	key string

	cat      *snap
	ch       *catalog.Channel
	rng      semver.Range
	inst     *Installed
	stay     *node // the installed bundle, when installed
	instName string
	cands    []*node // most preferred first
	latest   *semver.Version
	// approvedNote says why the approved version cannot be the target.
	approvedNote string
	edges        map[*node]EdgeKind
	rejected     []Rejection
	warnings     []string
	fail         *Explanation
	decision     *Decision
}

// prepare finds the subscription's candidates and rejects the other bundles
// of the package with a reason.
func (r *resolver) prepare(s *subState) {
	sub := s.sub
	fail := func(code Code, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		s.fail = &Explanation{Code: code, Message: msg, Facts: []string{msg}}
	}
	s.edges = map[*node]EdgeKind{}
	var err error
	s.rng = func(semver.Version) bool { return true }
	if strings.TrimSpace(sub.Range) != "" {
		if s.rng, err = catalog.ParseRange(sub.Range); err != nil {
			fail(CodeInvalid, "subscription %s: range %q is not a version range", s.key, sub.Range)
			return
		}
	}
	var start *semver.Version
	if sub.StartingVersion != "" {
		v, err := catalog.ParseVersion(strings.TrimPrefix(sub.StartingVersion, "v"))
		if err != nil {
			fail(CodeInvalid, "subscription %s: starting version %q is not a semantic version", s.key, sub.StartingVersion)
			return
		}
		start = &v
	}
	switch {
	case sub.Catalog != "":
		s.cat = r.catByName[sub.Catalog]
		if s.cat == nil {
			fail(CodeNoCatalog, "catalog %q is not available", sub.Catalog)
			return
		}
	default:
		for _, c := range r.cats {
			if c.Catalog.Package(sub.Package) != nil {
				s.cat = c
				break
			}
		}
		if s.cat == nil {
			fail(CodeNoPackage, "no catalog has package %q", sub.Package)
			return
		}
	}
	p := s.cat.Catalog.Package(sub.Package)
	if p == nil {
		fail(CodeNoPackage, "catalog %q has no package %q", s.cat.Name, sub.Package)
		return
	}
	chName := sub.Channel
	if chName == "" {
		chName = p.DefaultChannel
	}
	s.ch = p.Channel(chName)
	if s.ch == nil {
		names := make([]string, len(p.Channels))
		for i, c := range p.Channels {
			names[i] = c.Name
		}
		fail(CodeNoChannel, "package %q in catalog %q has no channel %q (it has %s)", p.Name, s.cat.Name, chName, strings.Join(names, ", "))
		return
	}
	if p.Deprecation != nil {
		s.warnings = append(s.warnings, fmt.Sprintf("package %s is deprecated: %s", p.Name, p.Deprecation.Message))
	}
	if s.ch.Deprecation != nil {
		s.warnings = append(s.warnings, fmt.Sprintf("channel %q of package %s is deprecated: %s", s.ch.Name, p.Name, s.ch.Deprecation.Message))
	}
	scope := sub.Namespace
	reject := func(b *catalog.Bundle, why Reason, format string, args ...any) {
		s.rejected = append(s.rejected, Rejection{Catalog: s.cat.Name, Bundle: b.Name, Version: b.Version, Reason: why, Message: fmt.Sprintf(format, args...)})
	}
	inChannel := map[*catalog.Bundle]bool{}
	var good, deprecated []*node
	// unfit says, per bundle passed over for the cluster's Kubernetes
	// version, why.
	var unfit []string
	s.inst = r.installed[scopePkg{scope, sub.Package}]
	if s.inst != nil {
		s.stay = r.installedNode(s.inst, s.cat)
		s.instName = s.inst.Bundle
		if s.instName == "" {
			s.instName = s.stay.name
		}
	}
	// An installed version outside the range may be replaced by a lower
	// one within it, when the subscription allows downgrades.
	downgrade := sub.AllowDowngrade && s.inst != nil && strings.TrimSpace(sub.Range) != "" && !s.rng(s.inst.Version)
	for i := len(s.ch.Entries) - 1; i >= 0; i-- {
		e := s.ch.Entries[i]
		b := e.Bundle
		inChannel[b] = true
		if s.rng(b.Version) && (s.latest == nil || b.Version.GT(*s.latest)) {
			v := b.Version
			s.latest = &v
		}
		if s.stay != nil && s.stay.bundle == b {
			continue
		}
		kind := EdgeInstall
		if s.inst != nil {
			iv := s.inst.Version
			if b.Version.LT(iv) && !downgrade {
				reject(b, ReasonDowngrade, "lower than the installed version %s", iv)
				continue
			}
			if b.Version.LT(iv) {
				kind = EdgeDowngrade
			} else {
				k, ok := e.UpgradesFrom(s.instName, &iv)
				if !ok {
					reject(b, ReasonNoEdge, "no upgrade edge from the installed %s (it neither replaces nor skips it, nor has a skipRange containing %s)", s.instName, iv)
					continue
				}
				kind = EdgeKind(k)
			}
		} else if start != nil && !b.Version.EQ(*start) {
			reject(b, ReasonNotStartingVersion, "not the starting version %s", start)
			continue
		}
		if !s.rng(b.Version) {
			reject(b, ReasonOutsideRange, "outside the range %s", sub.Range)
			continue
		}
		if why, msg := r.kubeFit(s.cat.Name, b); why != "" {
			reject(b, why, "%s", msg)
			unfit = append(unfit, b.Version.String()+" "+msg)
			continue
		}
		n := r.nodeFor(scope, s.cat, b)
		s.edges[n] = kind
		if n.deprecated != "" {
			deprecated = append(deprecated, n)
		} else {
			good = append(good, n)
		}
	}
	s.cands = slices.Concat(good, deprecated)
	if downgrade {
		// Any version within the range beats the installed one outside it;
		// upgrades (within the range) come first, then downgrades, highest first.
		slices.SortStableFunc(s.cands, func(a, b *node) int {
			return cmp.Compare(boolRank(s.edges[a] == EdgeDowngrade), boolRank(s.edges[b] == EdgeDowngrade))
		})
	}
	if s.stay != nil {
		s.cands = append(s.cands, s.stay)
		s.edges[s.stay] = EdgeNone
		if !s.rng(s.stay.version) {
			s.warnings = append(s.warnings, fmt.Sprintf("the installed %s is outside the range %s", s.stay, sub.Range))
		}
	}
	for i := len(p.Bundles) - 1; i >= 0; i-- {
		b := p.Bundles[i]
		if !inChannel[b] && (s.stay == nil || s.stay.bundle != b) {
			reject(b, ReasonNotInChannel, "not in channel %q (it is in %s)", s.ch.Name, strings.Join(b.Channels, ", "))
		}
	}
	r.preferApproved(s, p)
	for _, n := range s.cands {
		n.ofSub = append(n.ofSub, s)
	}
	if len(s.cands) > 0 {
		return
	}
	// Nothing left: say which filter emptied the channel.
	var have []string
	for _, e := range s.ch.Entries {
		have = append(have, e.Bundle.Version.String())
	}
	switch {
	case len(unfit) > 0:
		if len(unfit) > MaxKubeVersionFacts {
			unfit = append(unfit[:MaxKubeVersionFacts], fmt.Sprintf("%d more", len(unfit)-MaxKubeVersionFacts))
		}
		fail(CodeKubeVersion, "no version of %s in channel %q of catalog %q fits the cluster's Kubernetes %s: %s", p.Name, s.ch.Name, s.cat.Name, r.kube, strings.Join(unfit, "; "))
	case start != nil && !slices.ContainsFunc(s.ch.Entries, func(e *catalog.ChannelEntry) bool { return e.Bundle.Version.EQ(*start) }):
		fail(CodeNoCandidate, "channel %q of package %s in catalog %q has no version %s (it has %s)", s.ch.Name, p.Name, s.cat.Name, start, joinAnd(have))
	case start != nil:
		fail(CodeNoCandidate, "the starting version %s of package %s is outside the range %s", start, p.Name, sub.Range)
	default:
		fail(CodeNoCandidate, "channel %q of package %s in catalog %q has no version within the range %s (it has %s)", s.ch.Name, p.Name, s.cat.Name, sub.Range, joinAnd(have))
	}
}

// joinAnd renders "a", "a and b", "a, b and c".
func joinAnd(items []string) string {
	switch len(items) {
	case 0:
		return "nothing"
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// preferApproved makes the approved version of a Manual subscription its
// most preferred candidate when it is one (reachable from the installed
// bundle, in the channel and the range), and otherwise notes why it is not.
func (r *resolver) preferApproved(s *subState, p *catalog.Package) {
	sub := s.sub
	if sub.Approval != ApprovalManual || sub.ApprovedVersion == "" || s.inst == nil {
		return
	}
	want, err := catalog.ParseVersion(strings.TrimPrefix(sub.ApprovedVersion, "v"))
	if err != nil {
		s.approvedNote = fmt.Sprintf("approvedVersion %q is not a semantic version", sub.ApprovedVersion)
		return
	}
	if want.EQ(s.inst.Version) {
		return
	}
	for i, n := range s.cands {
		if n != s.stay && n.version.EQ(want) {
			if s.edges[n] == EdgeDowngrade {
				break
			}
			s.cands = slices.Insert(slices.Delete(s.cands, i, i+1), 0, n)
			return
		}
	}
	for _, rej := range s.rejected {
		if rej.Version.EQ(want) {
			s.approvedNote = fmt.Sprintf("approvedVersion %s is not reachable: %s", want, rej.Message)
			return
		}
	}
	if p.BundleByVersion(want) == nil {
		s.approvedNote = fmt.Sprintf("approvedVersion %s: package %s has no such version in catalog %q", want, p.Name, s.cat.Name)
		return
	}
	s.approvedNote = fmt.Sprintf("approvedVersion %s is not reachable from the installed %s", want, s.instName)
}
