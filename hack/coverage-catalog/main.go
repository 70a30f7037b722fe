// Command coverage-catalog measures how much of a real catalog Ferry
// installs: for every package it subscribes to the package's default
// channel on an empty cluster, runs the resolver, renders what the resolver
// chose (the target and its dependencies) with install.Render in the
// operator's preferred install mode (AllNamespaces when supported, else
// OwnNamespace), and prints a markdown table: how many packages install,
// and why the rest cannot, grouped by reason. Every package is in exactly
// one group.
//
//	go run ./hack/coverage-catalog                       # the shared corpus
//	go run ./hack/coverage-catalog -corpus X.tar.xz      # another tarball
//	go run ./hack/coverage-catalog -catalog DIR -v       # a catalog tree; every package listed
//
// A tarball is unpacked once into $FERRY_CACHE/corpus/<name>/ (the same
// place hack/bench uses).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/resolver"

	corpuspkg "github.com/ferrydev/ferry/internal/corpus"
)

// Namespace is the install namespace every package is rendered into.
const Namespace = "coverage"

// catalogName names the catalog in the resolver's requests.
const catalogName = "corpus"

// Group names that are not derived from a message.
const (
	GroupInstalls   = "installs"
	GroupNoChannel  = "no default channel head"
	GroupImageOnly  = "image-only bundle (manifests only in the bundle image)"
	GroupManifests  = "manifests unreadable"
	GroupOtherError = "invalid bundle: other"
)

// Outcome is what became of one package.
type Outcome struct {
	Package string
	// Bundle is the bundle the group is about (the target or a dependency).
	Bundle string
	Group  string
	// Detail is the message behind the group.
	Detail string
}

// Report is the measurement of one catalog.
type Report struct {
	Packages int
	Outcomes []Outcome // by package
}

// Groups returns the group names, the largest first, then by name, and the
// outcomes of each.
func (r *Report) Groups() ([]string, map[string][]Outcome) {
	by := map[string][]Outcome{}
	for _, o := range r.Outcomes {
		by[o.Group] = append(by[o.Group], o)
	}
	names := make([]string, 0, len(by))
	for g := range by {
		names = append(names, g)
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := len(by[b]) - len(by[a]); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return names, by
}

// Measure classifies every package of the catalog.
func Measure(ctx context.Context, c *catalog.Catalog) (*Report, error) {
	rep := &Report{Packages: len(c.Packages)}
	for _, p := range c.Packages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		o, err := classify(ctx, c, p)
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", p.Name, err)
		}
		rep.Outcomes = append(rep.Outcomes, o)
	}
	return rep, nil
}

func classify(ctx context.Context, c *catalog.Catalog, p *catalog.Package) (Outcome, error) {
	out := Outcome{Package: p.Name}
	ch := p.Channel(p.DefaultChannel)
	if ch == nil || ch.HeadEntry() == nil {
		out.Group, out.Detail = GroupNoChannel, fmt.Sprintf("default channel %q", p.DefaultChannel)
		return out, nil
	}
	res, err := resolver.Resolve(ctx, resolver.Request{
		Catalogs:      []resolver.Snapshot{{Name: catalogName, Catalog: c}},
		Subscriptions: []resolver.Subscription{{Namespace: Namespace, Name: p.Name, Catalog: catalogName, Package: p.Name}},
	})
	if err != nil {
		return out, err
	}
	d := res.Decisions[0]
	if d.Status == resolver.StatusUnsatisfiable {
		out.Bundle = ch.Head
		out.Group = "resolver: " + string(d.Explanation.Code)
		out.Detail = d.Explanation.Message
		return out, nil
	}
	todo := []struct{ pkg, bundle string }{{d.Target.Package, d.Target.Bundle}}
	for _, dep := range d.Dependencies {
		todo = append(todo, struct{ pkg, bundle string }{dep.Package, dep.Bundle})
	}
	for i, t := range todo {
		b := c.Bundle(t.pkg, t.bundle)
		if b == nil {
			return out, fmt.Errorf("resolver chose %s of package %s, which the catalog does not have", t.bundle, t.pkg)
		}
		group, detail := render(b)
		if group == GroupInstalls {
			continue
		}
		out.Bundle, out.Group, out.Detail = b.Name, group, detail
		if i > 0 {
			out.Group = "dependency: " + group
			out.Detail = fmt.Sprintf("dependency %s: %s", b.Name, detail)
		}
		return out, nil
	}
	out.Bundle, out.Group = d.Target.Bundle, GroupInstalls
	if d.Target.Bundle != ch.Head {
		out.Detail = fmt.Sprintf("%s, not the head %s", d.Target.Bundle, ch.Head)
	}
	return out, nil
}

var (
	reKind = regexp.MustCompile(`kind (\S+) \(apiVersion (\S+)\) cannot be installed`)
	reCRD  = regexp.MustCompile(`CustomResourceDefinition \S+ uses (\S+); only`)
	// rePatterns map a fixed part of install.Render's messages to a group.
	rePatterns = []struct {
		re    *regexp.Regexp
		group string
	}{
		{regexp.MustCompile(`spec\.webhookdefinitions\[\d+\]`), "webhooks (spec.webhookdefinitions)"},
		{regexp.MustCompile(`API services are not supported`), "API services (spec.apiservicedefinitions)"},
		{regexp.MustCompile(`spec\.install\.strategy is`), "install strategy other than deployment"},
		{regexp.MustCompile(`spec\.install\.spec\.deployments is empty`), "no deployment"},
		{regexp.MustCompile(`spec\.customresourcedefinitions\.owned\[\d+\] names CRD`), "owned CRD not shipped"},
		{regexp.MustCompile(`spec\.customresourcedefinitions\.owned\[\d+\] names version`), "owned CRD version not defined"},
		{regexp.MustCompile(`no ClusterServiceVersion among|ClusterServiceVersions \(`), "not exactly one ClusterServiceVersion"},
		{regexp.MustCompile(`shipped twice|listed twice`), "an object shipped twice"},
		{regexp.MustCompile(`has no serviceAccountName`), "permissions without a serviceAccountName"},
		{regexp.MustCompile(`never a user or a group`), "binds a user or a group"},
		{regexp.MustCompile(`is not a ServiceAccount of the bundle`), "binds a ServiceAccount that is not the bundle's own, cluster-wide or to a role it does not ship"},
		{regexp.MustCompile(`is the default ServiceAccount of namespace`), "binds the namespace's default ServiceAccount"},
		{regexp.MustCompile(`name "[^"]*" is invalid`), "invalid object name"},
	}
)

// render renders one bundle and names the group of the outcome.
func render(b *catalog.Bundle) (group, detail string) {
	if !b.HasManifests() {
		return GroupImageOnly, "bundle image " + b.Image
	}
	ms, err := b.Manifests()
	if err != nil {
		return GroupManifests, err.Error()
	}
	_, err = install.Render(install.Input{
		Owner:     types.NamespacedName{Namespace: Namespace, Name: b.Package},
		Namespace: Namespace, Package: b.Package, Version: b.Version.String(), Bundle: b.Name,
		Manifests: ms,
	})
	if err == nil {
		return GroupInstalls, ""
	}
	return groupOf(err)
}

// groupOf names the group of a render error.
func groupOf(err error) (group, detail string) {
	var mode *install.UnsupportedInstallModeError
	if errors.As(err, &mode) {
		return "install mode (neither AllNamespaces nor OwnNamespace)", err.Error()
	}
	var bad *install.InvalidBundleError
	if !errors.As(err, &bad) {
		return "render error", err.Error()
	}
	if m := reKind.FindStringSubmatch(bad.Reason); m != nil {
		return fmt.Sprintf("unsupported kind %s (%s)", m[1], m[2]), bad.Reason
	}
	if m := reCRD.FindStringSubmatch(bad.Reason); m != nil {
		return "CustomResourceDefinition " + m[1], bad.Reason
	}
	for _, p := range rePatterns {
		if p.re.MatchString(bad.Reason) {
			return p.group, bad.Reason
		}
	}
	return GroupOtherError, bad.Reason
}

// Write prints the report as markdown.
func (r *Report) Write(w io.Writer, source string, verbose bool) error {
	names, by := r.Groups()
	n := len(by[GroupInstalls])
	var b strings.Builder
	fmt.Fprintf(&b, "### What installs: %s\n\n", source)
	fmt.Fprintf(&b, "%d of %d packages (%.0f%%) install: the resolver satisfies a subscription to the default channel on an empty cluster, and install.Render renders the target and its dependencies in the preferred install mode.\n\n",
		n, r.Packages, 100*float64(n)/float64(max(r.Packages, 1)))
	b.WriteString("| outcome | packages | examples | first reason |\n|---|---:|---|---|\n")
	for _, g := range names {
		os := by[g]
		var ex []string
		for i, o := range os {
			if i == 3 {
				break
			}
			ex = append(ex, o.Package)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", g, len(os), strings.Join(ex, ", "), cell(os[0].Detail, 140))
	}
	if verbose {
		b.WriteString("\n| package | bundle | outcome | reason |\n|---|---|---|---|\n")
		for _, o := range r.Outcomes {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", o.Package, o.Bundle, o.Group, cell(o.Detail, 300))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell makes text fit a markdown table cell of at most limit runes.
func cell(s string, limit int) string {
	s = strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit-1]) + "…"
	}
	return s
}

// DefaultCorpus is the shared corpus next to the repository, or FERRY_CORPUS.
func DefaultCorpus() string {
	if c := os.Getenv("FERRY_CORPUS"); c != "" {
		return c
	}
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", "..", "shared", "corpus", "community-prod-full-fbc.tar.xz")
}

// DefaultCache is $FERRY_CACHE, else ~/.cache/ferry.
func DefaultCache() string {
	if c := os.Getenv("FERRY_CACHE"); c != "" {
		return c
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "ferry-cache")
	}
	return filepath.Join(home, ".cache", "ferry")
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("coverage-catalog", flag.ContinueOnError)
	corpus := fs.String("corpus", DefaultCorpus(), "the catalog as a tar.xz of a file-based catalog tree; env FERRY_CORPUS")
	dir := fs.String("catalog", "", "a catalog directory to measure instead of -corpus")
	cache := fs.String("cache", DefaultCache(), "where a tarball is unpacked; env FERRY_CACHE")
	verbose := fs.Bool("v", false, "list every package with its outcome")
	if err := fs.Parse(args); err != nil {
		return err
	}
	source := filepath.Base(*corpus)
	root := *dir
	if root == "" {
		var err error
		if root, err = corpuspkg.Extract(ctx, *corpus, *cache); err != nil {
			return err
		}
	} else {
		source = root
	}
	c, err := catalog.Load(ctx, []catalog.Source{catalog.DirSource(root)})
	if err != nil {
		return fmt.Errorf("loading %s: %w", root, err)
	}
	rep, err := Measure(ctx, c)
	if err != nil {
		return err
	}
	return rep.Write(stdout, source, *verbose)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "coverage-catalog:", err)
		os.Exit(1)
	}
}
