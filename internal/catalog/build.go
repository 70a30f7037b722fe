package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/blang/semver/v4"
)

// buildVersion names build's logic — validation, linking, derived and
// registry forms of properties, the catalog digest — for the on-disk index,
// which stores build's output. Change it whenever build's output for the
// same documents changes: TestIndexVersionGuard fails when the encoded
// model of its fixture differs from the golden recorded for this version.
const buildVersion = 1

// build validates the documents and assembles the model. Whatever is invalid
// is reported and left out; everything else is served.
func build(cfg *declConfig, sink *problemSink) *Catalog {
	c := &Catalog{packages: map[string]*Package{}, providers: map[GVK][]*Bundle{}}
	declPkgs := map[string]*declPackage{}
	for _, p := range cfg.packages {
		if prev := declPkgs[p.Name]; prev != nil {
			sink.errorf(p.src, p.field, "package %q is declared again (first in %s); this declaration is ignored", p.Name, prev.src)
			continue
		}
		declPkgs[p.Name] = p
		c.packages[p.Name] = &Package{
			Name: p.Name, DefaultChannel: p.DefaultChannel, Description: p.Description, Icon: p.Icon,
			channels: map[string]*Channel{}, bundles: map[string]*Bundle{},
		}
	}
	buildBundles(c, cfg, sink)
	buildChannels(c, cfg, sink)
	finishPackages(c, declPkgs, sink)
	applyDeprecations(c, cfg, sink)
	c.Others = append(c.Others, cfg.others...)
	sort.SliceStable(c.Others, func(i, j int) bool {
		a, b := c.Others[i], c.Others[j]
		if a.Schema != b.Schema {
			return a.Schema < b.Schema
		}
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		return a.Name < b.Name
	})
	c.Digest = digest(c)
	return c
}

// bundleForms is what a bundle's properties derive to, computed for all
// bundles at once on every core before the model is linked in order.
type bundleForms struct {
	derived           bundleDerived
	deriveErrs        []fieldError
	regProps, regDeps []Property
	regErrs           []fieldError
}

func buildBundles(c *Catalog, cfg *declConfig, sink *problemSink) {
	forms := make([]bundleForms, len(cfg.bundles))
	_ = forEach(context.Background(), len(cfg.bundles), func(i int) {
		f := &forms[i]
		f.derived, f.deriveErrs = deriveProperties(cfg.bundles[i].Properties)
		f.regProps, f.regDeps, f.regErrs = registryForm(cfg.bundles[i].Properties)
	})
	for i, db := range cfg.bundles {
		loc := loc{db.src, db.field}
		p := c.packages[db.Package]
		if p == nil {
			sink.errorf(loc.path, loc.field, "package %q has no olm.package document; bundle %q is not served", db.Package, db.Name)
			sink.tag(len(sink.list)-1, db.Package, db.Name)
			continue
		}
		if prev := p.bundles[db.Name]; prev != nil {
			sink.errorf(loc.path, loc.field, "bundle %q is defined again (first in %s); this definition is not served", db.Name, prev.Source)
			sink.tag(len(sink.list)-1, db.Package, db.Name)
			continue
		}
		mark := len(sink.list)
		d, regProps, regDeps := forms[i].derived, forms[i].regProps, forms[i].regDeps
		for _, e := range forms[i].deriveErrs {
			sink.errorf(loc.path, joinField(loc.field, e.field), "%s", e.reason)
		}
		for _, e := range forms[i].regErrs {
			sink.errorf(loc.path, joinField(loc.field, e.field), "%s", e.reason)
		}
		switch {
		case d.pkg == nil:
			sink.errorf(loc.path, joinField(loc.field, "properties"), "no olm.package property; a bundle must carry exactly one")
		case d.pkg.PackageName != db.Package:
			sink.errorf(loc.path, joinField(loc.field, "properties (olm.package)"), "packageName %q differs from package %q", d.pkg.PackageName, db.Package)
		}
		var version semver.Version
		if d.pkg != nil {
			v, err := ParseVersion(d.pkg.Version)
			if err != nil {
				sink.errorf(loc.path, joinField(loc.field, "properties (olm.package).version"), "%v", err)
			}
			version = v
		}
		sink.tag(mark, db.Package, db.Name)
		if len(sink.list) > mark {
			continue
		}
		b := &Bundle{
			Package: db.Package, Name: db.Name, Version: version, Image: db.Image,
			Properties: db.Properties, RelatedImages: db.RelatedImages, Source: db.src,
			ProvidedAPIs: d.provided, RequiredAPIs: d.required, RequiredPackages: d.packages,
			manifests: db.manifests, csvMetadata: db.csvMetadata, sum: db.sum,
			manifestsDigest:    db.manifestsDigest,
			registryProperties: regProps, registryDependencies: regDeps,
		}
		p.bundles[b.Name] = b
		db.built = b
	}
}

type loc struct{ path, field string }

func joinField(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " " + b
}

// entryLoc names where a channel entry came from: the channel document of a
// file-based catalog, or the bundle directory whose CSV defines the edges.
func entryLoc(ch *declChannel, e *ChannelEntry, p *Package) loc {
	if ch.field == "" && p != nil {
		if b := p.bundles[e.Name]; b != nil {
			return loc{b.Source, "channel " + quote(ch.Name)}
		}
	}
	return loc{ch.src, joinField(ch.field, "entry "+quote(e.Name))}
}

func buildChannels(c *Catalog, cfg *declConfig, sink *problemSink) {
	for _, dc := range cfg.channels {
		p := c.packages[dc.Package]
		if p == nil {
			sink.errorf(dc.src, dc.field, "package %q has no olm.package document; channel %q is not served", dc.Package, dc.Name)
			continue
		}
		if p.channels[dc.Name] != nil {
			sink.errorf(dc.src, dc.field, "channel %q of package %q is defined again; this definition is ignored", dc.Name, dc.Package)
			continue
		}
		ch := &Channel{Package: p.Name, Name: dc.Name, Properties: dc.Properties, entries: map[string]*ChannelEntry{}}
		for i := range dc.Entries {
			e := dc.Entries[i]
			l := entryLoc(dc, &e, p)
			if e.Name == "" {
				sink.errorf(dc.src, joinField(dc.field, fmt.Sprintf("entries[%d].name", i)), "missing")
				continue
			}
			if ch.entries[e.Name] != nil {
				sink.errorf(l.path, l.field, "listed twice in the channel; the second entry is ignored")
				continue
			}
			b := p.bundles[e.Name]
			if b == nil {
				sink.errorf(l.path, l.field, "no servable bundle %q in package %q; entry dropped", e.Name, p.Name)
				sink.tag(len(sink.list)-1, p.Name, e.Name)
				continue
			}
			if e.SkipRange != "" {
				r, norm, fixed, err := parseRangeLenient(e.SkipRange)
				if err != nil {
					sink.errorf(l.path, joinField(l.field, "skipRange"), "%v; entry dropped", err)
					sink.tag(len(sink.list)-1, p.Name, e.Name)
					continue
				}
				if fixed && dc.field != "" {
					sink.warnf(l.path, joinField(l.field, "skipRange"), "%q has a \"v\" before a version; read as %q", e.SkipRange, norm)
				}
				e.SkipRange, e.skipRange = norm, r
			}
			e.Bundle = b
			ce := e
			ch.entries[e.Name] = &ce
			ch.Entries = append(ch.Entries, &ce)
		}
		if !validateGraph(ch, dc, p, sink) {
			continue
		}
		if len(ch.Entries) == 0 {
			sink.errorf(dc.src, dc.field, "channel %q of package %q has no servable entries; not served", dc.Name, dc.Package)
			continue
		}
		sort.SliceStable(ch.Entries, func(i, j int) bool { return ch.Entries[i].Bundle.Version.LT(ch.Entries[j].Bundle.Version) })
		p.channels[ch.Name] = ch
		p.Channels = append(p.Channels, ch)
	}
}

// validateGraph finds the channel head and drops stranded entries. It
// returns false when the channel cannot be served at all.
func validateGraph(ch *Channel, dc *declChannel, p *Package, sink *problemSink) bool {
	if len(ch.Entries) == 0 {
		return true
	}
	named := map[string]bool{}
	skipped := map[string]bool{}
	for _, e := range ch.Entries {
		if e.Replaces != "" {
			named[e.Replaces] = true
		}
		for _, s := range e.Skips {
			named[s] = true
			skipped[s] = true
		}
	}
	var heads []*ChannelEntry
	for _, e := range ch.Entries {
		if !named[e.Name] {
			heads = append(heads, e)
		}
	}
	chLoc := loc{dc.src, dc.field}
	if dc.field == "" {
		chLoc = loc{dc.src, "channel " + quote(ch.Name)}
	}
	if len(heads) == 0 {
		sink.errorf(chLoc.path, chLoc.field, "channel %q has no head: every entry is replaced or skipped by another (a cycle); channel not served", ch.Name)
		sink.tag(len(sink.list)-1, p.Name, "")
		return false
	}
	head := heads[0]
	for _, h := range heads[1:] {
		if h.Bundle.Version.GT(head.Bundle.Version) {
			head = h
		}
	}
	if len(heads) > 1 {
		names := make([]string, 0, len(heads))
		for _, h := range heads {
			names = append(names, h.Name)
		}
		sort.Strings(names)
		sink.errorf(chLoc.path, chLoc.field, "channel %q has %d heads %v; serving the highest version %q as head, the others are stranded", ch.Name, len(heads), names, head.Name)
		sink.tag(len(sink.list)-1, p.Name, "")
	}
	reached := map[string]bool{}
	for e := head; e != nil; {
		if reached[e.Name] {
			sink.errorf(chLoc.path, chLoc.field, "the replaces chain from head %q loops back to %q; channel not served", head.Name, e.Name)
			sink.tag(len(sink.list)-1, p.Name, "")
			return false
		}
		reached[e.Name] = true
		e = ch.entries[e.Replaces]
	}
	kept := ch.Entries[:0]
	for _, e := range ch.Entries {
		if reached[e.Name] || skipped[e.Name] {
			kept = append(kept, e)
			continue
		}
		l := entryLoc(dc, e, p)
		sink.errorf(l.path, l.field, "stranded: not reachable by the replaces chain from head %q and not skipped; dropped from channel %q", head.Name, ch.Name)
		sink.tag(len(sink.list)-1, p.Name, e.Name)
		delete(ch.entries, e.Name)
	}
	ch.Entries = kept
	ch.Head = head.Name
	return true
}

func finishPackages(c *Catalog, declPkgs map[string]*declPackage, sink *problemSink) {
	names := make([]string, 0, len(c.packages))
	for n := range c.packages {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := c.packages[n]
		dp := declPkgs[n]
		inChannel := map[*Bundle][]string{}
		sort.Slice(p.Channels, func(i, j int) bool { return p.Channels[i].Name < p.Channels[j].Name })
		for _, ch := range p.Channels {
			for _, e := range ch.Entries {
				inChannel[e.Bundle] = append(inChannel[e.Bundle], ch.Name)
			}
		}
		bnames := make([]string, 0, len(p.bundles))
		for bn := range p.bundles {
			bnames = append(bnames, bn)
		}
		sort.Strings(bnames)
		for _, bn := range bnames {
			b := p.bundles[bn]
			chs := inChannel[b]
			if len(chs) == 0 {
				if dp.field != "" {
					sink.errorf(b.Source, "", "bundle %q is in no channel of package %q; not served", b.Name, p.Name)
					sink.tag(len(sink.list)-1, p.Name, b.Name)
				}
				delete(p.bundles, bn)
				continue
			}
			b.Channels = chs
			p.Bundles = append(p.Bundles, b)
		}
		sort.SliceStable(p.Bundles, func(i, j int) bool { return p.Bundles[i].Version.LT(p.Bundles[j].Version) })
		reason := ""
		switch {
		case len(p.Channels) == 0:
			reason = "it has no servable channel"
		case p.DefaultChannel == "":
			reason = "defaultChannel is not set"
		case p.channels[p.DefaultChannel] == nil:
			reason = fmt.Sprintf("its default channel %q does not exist or is not servable", p.DefaultChannel)
		}
		if reason != "" {
			sink.errorf(dp.src, joinField(dp.field, "defaultChannel"), "package %q is not served: %s", p.Name, reason)
			sink.tag(len(sink.list)-1, p.Name, "")
			delete(c.packages, n)
			continue
		}
		c.Packages = append(c.Packages, p)
		for _, b := range p.Bundles {
			for _, g := range b.ProvidedAPIs {
				c.providers[g] = append(c.providers[g], b)
			}
		}
	}
}

func applyDeprecations(c *Catalog, cfg *declConfig, sink *problemSink) {
	for _, d := range cfg.deprecations {
		p := c.packages[d.Package]
		if p == nil {
			sink.warnf(d.src, d.field, "package %q is not served; deprecations ignored", d.Package)
			continue
		}
		for i, e := range d.Entries {
			dep := &Deprecation{Message: e.Message}
			field := joinField(d.field, fmt.Sprintf("entries[%d].reference", i))
			switch e.Reference.Schema {
			case SchemaPackage:
				p.Deprecation = dep
			case SchemaChannel:
				if ch := p.channels[e.Reference.Name]; ch != nil {
					ch.Deprecation = dep
				} else {
					sink.warnf(d.src, field, "channel %q is not served; deprecation ignored", e.Reference.Name)
				}
			case SchemaBundle:
				if b := p.bundles[e.Reference.Name]; b != nil {
					b.Deprecation = dep
				} else {
					sink.warnf(d.src, field, "bundle %q is not served; deprecation ignored", e.Reference.Name)
				}
			default:
				sink.warnf(d.src, field+".schema", "unknown schema %q; deprecation ignored", e.Reference.Schema)
			}
		}
	}
}

// digest hashes everything the catalog serves, in a fixed order.
func digest(c *Catalog) string {
	h := sha256.New()
	for _, p := range c.Packages {
		fmt.Fprintf(h, "package\x00%s\x00%s\x00%s\x00", p.Name, p.DefaultChannel, p.Description)
		if p.Icon != nil {
			fmt.Fprintf(h, "%s\x00%s\x00", p.Icon.MediaType, p.Icon.Base64Data)
		}
		writeDeprecation(h, p.Deprecation)
		for _, ch := range p.Channels {
			entries, _ := json.Marshal(ch.Entries)
			fmt.Fprintf(h, "channel\x00%s\x00%s\x00%s\x00", ch.Name, ch.Head, entries)
			writeDeprecation(h, ch.Deprecation)
		}
		for _, b := range p.Bundles {
			fmt.Fprintf(h, "bundle\x00%s\x00%x\x00%s\x00", b.Name, b.sum, b.manifestsDigest)
			writeDeprecation(h, b.Deprecation)
		}
	}
	for _, o := range c.Others {
		fmt.Fprintf(h, "other\x00%s\x00%s\x00%s\x00%s\x00", o.Schema, o.Package, o.Name, o.Blob)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func writeDeprecation(h interface{ Write([]byte) (int, error) }, d *Deprecation) {
	if d != nil {
		fmt.Fprintf(h, "deprecated\x00%s\x00", d.Message)
	}
}
