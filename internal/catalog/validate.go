package catalog

import (
	"io/fs"
	"sort"

	"github.com/blang/semver/v4"
)

// BundleInfo describes one valid registry+v1 bundle.
type BundleInfo struct {
	// Package and Name (the CSV's name) identify the bundle.
	Package string
	Name    string
	// Version is the CSV's spec.version.
	Version semver.Version
	// Channels and DefaultChannel come from metadata/annotations.yaml.
	Channels       []string
	DefaultChannel string
	// Replaces, Skips and SkipRange are the CSV's upgrade edges.
	Replaces  string
	Skips     []string
	SkipRange string
	// Digest is the digest the served catalog gives the bundle (Bundle.Digest).
	Digest string
	// ClaimedAPIs are the APIs the bundle claims to provide, sorted and
	// without duplicates: its olm.gvk properties (every version of each CRD it
	// ships, and those metadata/properties.yaml or the CSV's olm.properties
	// declare) and the CRDs its CSV lists as owned.
	ClaimedAPIs []GVK
}

// ValidateBundle checks the registry+v1 bundle at the root of fsys with
// exactly the rules Load applies to a bundle directory, and returns what it
// found. Problem paths are relative to the bundle root (prefix them with the
// directory's name to show them). The info is nil when any problem is an
// error; warnings do not keep a bundle from being served.
func ValidateBundle(fsys fs.FS) (*BundleInfo, Problems) {
	sink := &problemSink{}
	pkgs := readBundle(fsys, "", sink)
	cfg := emitPackages(pkgs, sink)
	c := build(cfg, sink)
	ps := sink.list
	ps.sort()
	if len(ps.Errors()) > 0 || len(pkgs) == 0 {
		return nil, ps
	}
	b := pkgs[0].bundles[0]
	info := &BundleInfo{
		Package: b.decl.Package, Name: b.decl.Name, Version: b.version,
		Channels: b.channels, DefaultChannel: b.defaultChannel,
		Replaces: b.replaces, Skips: b.skips, SkipRange: b.skipRange,
	}
	claimed := map[GVK]bool{}
	for _, g := range b.owned {
		claimed[g] = true
	}
	if p := c.Package(info.Package); p != nil {
		if sb := p.Bundle(info.Name); sb != nil {
			info.Digest = sb.Digest()
			for _, g := range sb.ProvidedAPIs {
				claimed[g] = true
			}
		}
	}
	for g := range claimed {
		info.ClaimedAPIs = append(info.ClaimedAPIs, g)
	}
	sort.Slice(info.ClaimedAPIs, func(i, j int) bool { return info.ClaimedAPIs[i].String() < info.ClaimedAPIs[j].String() })
	return info, ps
}
