package resolver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/blang/semver/v4"

	"github.com/ferrydev/ferry/internal/catalog"
)

// The helpers build file-based catalog documents as JSON text, like the
// catalog package's own tests, and load them through catalog.Load.

func pkgDoc(name, def string) string {
	return fmt.Sprintf(`{"schema":"olm.package","name":%q,"defaultChannel":%q}`, name, def)
}

func chDoc(pkg, name string, entries ...string) string {
	return fmt.Sprintf(`{"schema":"olm.channel","package":%q,"name":%q,"entries":[%s]}`, pkg, name, strings.Join(entries, ","))
}

// ent is a channel entry for pkg.v<version>; edges are pairs:
// "replaces", "1.0.0" | "skips", "1.1.0" | "skipRange", ">=1.0.0 <1.2.0".
// Versions in replaces and skips become bundle names of the same package.
func ent(pkg, version string, edges ...string) string {
	s := fmt.Sprintf(`{"name":%q`, bname(pkg, version))
	for i := 0; i+1 < len(edges); i += 2 {
		switch edges[i] {
		case "skips":
			s += fmt.Sprintf(`,"skips":[%q]`, bname(pkg, edges[i+1]))
		case "replaces":
			s += fmt.Sprintf(`,"replaces":%q`, bname(pkg, edges[i+1]))
		default:
			s += fmt.Sprintf(`,%q:%q`, edges[i], edges[i+1])
		}
	}
	return s + "}"
}

func bname(pkg, version string) string { return pkg + ".v" + version }

func bundleDoc(pkg, version string, props ...string) string {
	all := append([]string{fmt.Sprintf(`{"type":"olm.package","value":{"packageName":%q,"version":%q}}`, pkg, version)}, props...)
	return fmt.Sprintf(`{"schema":"olm.bundle","package":%q,"name":%q,"image":"quay.io/x/%s:v%s","properties":[%s]}`,
		pkg, bname(pkg, version), pkg, version, strings.Join(all, ","))
}

func needsPkg(pkg, rng string) string {
	return fmt.Sprintf(`{"type":"olm.package.required","value":{"packageName":%q,"versionRange":%q}}`, pkg, rng)
}

func providesAPI(group, version, kind string) string {
	return fmt.Sprintf(`{"type":"olm.gvk","value":{"group":%q,"version":%q,"kind":%q}}`, group, version, kind)
}

func needsAPI(group, version, kind string) string {
	return fmt.Sprintf(`{"type":"olm.gvk.required","value":{"group":%q,"version":%q,"kind":%q}}`, group, version, kind)
}

func deprecateBundle(pkg, version, msg string) string {
	return fmt.Sprintf(`{"schema":"olm.deprecations","package":%q,"entries":[{"reference":{"schema":"olm.bundle","name":%q},"message":%q}]}`,
		pkg, bname(pkg, version), msg)
}

// simplePkg is a package with one channel whose entries replace each other in order.
func simplePkg(pkg, channel string, versions ...string) []string {
	docs := []string{pkgDoc(pkg, channel)}
	var entries []string
	for i, v := range versions {
		if i == 0 {
			entries = append(entries, ent(pkg, v))
		} else {
			entries = append(entries, ent(pkg, v, "replaces", versions[i-1]))
		}
		docs = append(docs, bundleDoc(pkg, v))
	}
	return append(docs, chDoc(pkg, channel, entries...))
}

func flat(parts ...any) []string {
	var out []string
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			out = append(out, p)
		case []string:
			out = append(out, p...)
		}
	}
	return out
}

func loadDocs(tb testing.TB, docs ...string) *catalog.Catalog {
	tb.Helper()
	fsys := fstest.MapFS{"catalog.json": &fstest.MapFile{Data: []byte(strings.Join(docs, "\n") + "\n")}}
	c, err := catalog.Load(context.Background(), []catalog.Source{{Name: "test", FS: fsys, Format: catalog.FormatFBC}})
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range c.Problems {
		if p.Severity == catalog.SeverityError {
			tb.Fatalf("fixture problem: %s", p)
		}
	}
	return c
}

func snapshot(tb testing.TB, name string, prio int, docs ...string) Snapshot {
	return Snapshot{Name: name, Priority: prio, Catalog: loadDocs(tb, docs...)}
}

func installed(ns, pkg, version, cat string) Installed {
	return Installed{Namespace: ns, Package: pkg, Version: semver.MustParse(version), Catalog: cat}
}

// describe renders a Decision compactly for exact comparison.
func describe(d Decision) string {
	var b strings.Builder
	if d.Target != nil {
		fmt.Fprintf(&b, "%s %s %s from %s/%s by %s", d.Status, d.Target.Bundle, d.Target.Version, d.Target.Catalog, d.Target.Channel, d.Edge.Kind)
		if d.Edge.From != "" {
			fmt.Fprintf(&b, " from %s", d.Edge.From)
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(&b, "%s\n", d.Status)
	}
	if d.NeedsApproval {
		b.WriteString("needs approval\n")
	}
	for _, dep := range d.Dependencies {
		fmt.Fprintf(&b, "dep %s from %s in %q: %s\n", dep.Bundle, dep.Catalog, dep.Namespace, dep.RequiredBy)
	}
	for _, r := range d.Rejected {
		fmt.Fprintf(&b, "rejected %s: %s: %s\n", r.Bundle, r.Reason, r.Message)
	}
	for _, w := range d.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	if e := d.Explanation; e != nil {
		fmt.Fprintf(&b, "%s: %s\n", e.Code, e.Message)
		if len(e.Linked) > 0 {
			fmt.Fprintf(&b, "linked with %s by %s\n", strings.Join(e.Linked, ", "), e.Link)
		}
	}
	return b.String()
}

func mustV(s string) semver.Version { return semver.MustParse(s) }
