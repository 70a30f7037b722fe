package catalog

import (
	"testing"
)

// TestAssembleRoundTrip: a catalog turned into documents and assembled again
// has the same packages, channels, edges, bundles and deprecations.
func TestAssembleRoundTrip(t *testing.T) {
	orig := loadFS(t, treeFS(
		bundleSpec{pkg: "foo", version: "1.0.0", channels: "stable,fast"},
		bundleSpec{pkg: "foo", version: "1.1.0", channels: "stable,fast", replaces: "foo.v1.0.0", skipRange: ">=1.0.0 <1.1.0"},
		bundleSpec{pkg: "foo", version: "1.2.0", channels: "fast", def: "stable", replaces: "foo.v1.1.0", skips: []string{"foo.v1.0.0"}},
	))
	var docs Documents
	for _, p := range orig.Packages {
		docs.Packages = append(docs.Packages, PackageDoc{Name: p.Name, DefaultChannel: p.DefaultChannel, Deprecation: &Deprecation{Message: "retired"}})
		for _, ch := range p.Channels {
			cd := ChannelDoc{Package: p.Name, Name: ch.Name}
			for _, e := range ch.Entries {
				cd.Entries = append(cd.Entries, ChannelEntry{Name: e.Name, Replaces: e.Replaces, Skips: e.Skips, SkipRange: e.SkipRange})
			}
			docs.Channels = append(docs.Channels, cd)
		}
		for _, b := range p.Bundles {
			docs.Bundles = append(docs.Bundles, BundleDoc{Package: p.Name, Name: b.Name, Properties: b.Properties, Digest: b.Digest()})
		}
	}
	got := Assemble("catalogd", orig.Digest, docs)
	if len(got.Problems) != 0 {
		t.Fatalf("problems: %v", got.Problems)
	}
	if got.Digest != orig.Digest || got.Counts() != orig.Counts() {
		t.Fatalf("digest %s counts %+v, want %s %+v", got.Digest, got.Counts(), orig.Digest, orig.Counts())
	}
	p := got.Package("foo")
	if p.Deprecation == nil || p.Channel("fast").Head != "foo.v1.2.0" || p.Channel("stable").Head != "foo.v1.1.0" {
		t.Fatalf("package not rebuilt: %+v", p)
	}
	b := p.Bundle("foo.v1.1.0")
	if b.Digest() != orig.Bundle("foo", "foo.v1.1.0").Digest() || len(b.ProvidedAPIs) != 1 {
		t.Errorf("bundle not rebuilt: %+v", b)
	}
	if !p.Channel("stable").Entry("foo.v1.1.0").InSkipRange(orig.Bundle("foo", "foo.v1.0.0").Version) {
		t.Error("skipRange lost")
	}
}
