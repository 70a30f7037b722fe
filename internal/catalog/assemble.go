package catalog

import (
	"encoding/hex"
	"strings"
	"time"
)

// Documents is a catalog as plain documents, as a client receives it from
// catalogd (GetSnapshot): no manifests.
type Documents struct {
	Packages []PackageDoc
	Channels []ChannelDoc
	Bundles  []BundleDoc
}

// PackageDoc is a package without its channels and bundles.
type PackageDoc struct {
	Name, DefaultChannel, Description string
	Deprecation                       *Deprecation
}

// ChannelDoc is a channel of a package.
type ChannelDoc struct {
	Package, Name string
	Entries       []ChannelEntry
	Deprecation   *Deprecation
}

// BundleDoc is a bundle without manifests.
type BundleDoc struct {
	Package, Name, Image string
	Properties           []Property
	RelatedImages        []RelatedImage
	Deprecation          *Deprecation
	// Digest is "sha256:<hex>" of the bundle's content, as the server reports it.
	Digest string
	// ManifestsDigest is ManifestsDigest of the bundle's manifests, as the
	// server announces it; "" when the server announces none.
	ManifestsDigest string
}

// Assemble validates documents and builds a catalog from them, exactly as
// Load does for files. digest, when set, becomes the catalog's digest (the
// server's), so that client and server name the same content alike.
func Assemble(name, digest string, docs Documents) *Catalog {
	cfg := &declConfig{}
	for _, p := range docs.Packages {
		cfg.packages = append(cfg.packages, &declPackage{Name: p.Name, DefaultChannel: p.DefaultChannel, Description: p.Description, src: name, field: "package " + quote(p.Name)})
		if p.Deprecation != nil {
			cfg.deprecations = append(cfg.deprecations, deprecationsOf(name, p.Name, SchemaPackage, "", p.Deprecation))
		}
	}
	for _, ch := range docs.Channels {
		entries := make([]ChannelEntry, len(ch.Entries))
		copy(entries, ch.Entries)
		cfg.channels = append(cfg.channels, &declChannel{Package: ch.Package, Name: ch.Name, Entries: entries, src: name, field: "channel " + quote(ch.Name)})
		if ch.Deprecation != nil {
			cfg.deprecations = append(cfg.deprecations, deprecationsOf(name, ch.Package, SchemaChannel, ch.Name, ch.Deprecation))
		}
	}
	for _, b := range docs.Bundles {
		db := &declBundle{Package: b.Package, Name: b.Name, Image: b.Image, Properties: b.Properties, RelatedImages: b.RelatedImages, src: name, field: "bundle " + quote(b.Name), manifestsDigest: b.ManifestsDigest}
		if sum, err := hex.DecodeString(strings.TrimPrefix(b.Digest, "sha256:")); err == nil && len(sum) == len(db.sum) {
			copy(db.sum[:], sum)
		}
		cfg.bundles = append(cfg.bundles, db)
		if b.Deprecation != nil {
			cfg.deprecations = append(cfg.deprecations, deprecationsOf(name, b.Package, SchemaBundle, b.Name, b.Deprecation))
		}
	}
	sink := &problemSink{}
	c := build(cfg, sink)
	c.Problems = sink.list
	c.Problems.sort()
	c.Sources = []string{name}
	c.LoadedAt = time.Now()
	if digest != "" {
		c.Digest = digest
	}
	return c
}

func deprecationsOf(src, pkg, schema, name string, d *Deprecation) *declDeprecations {
	var it deprecationItem
	it.Reference.Schema, it.Reference.Name, it.Message = schema, name, d.Message
	return &declDeprecations{Package: pkg, Entries: []deprecationItem{it}, src: src}
}
