package catalog

import (
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"

	"github.com/blang/semver/v4"
)

// Catalog is a loaded, validated catalog. It is immutable once returned by Load
// and safe for concurrent readers.
type Catalog struct {
	// Digest is "sha256:<hex>" over everything the catalog serves.
	Digest string
	// Packages sorted by name.
	Packages []*Package
	// Others holds documents of schemas this model does not interpret, passed through unchanged.
	Others []Meta
	// Problems found while loading, sorted by path.
	Problems Problems
	// LoadedAt is when loading finished.
	LoadedAt time.Time
	// Sources names the roots the catalog was loaded from.
	Sources []string
	// FromIndex is true when the model was read from the on-disk index
	// (WithIndex) instead of parsed and built.
	FromIndex bool

	packages map[string]*Package
	// providers maps an API to the bundles whose olm.gvk property provides it.
	providers map[GVK][]*Bundle
	// manifests is the cache of decoded manifests of bundles whose
	// documents stay on disk; nil when none is kept.
	manifests *manifestCache
}

// DropManifestCache empties the cache of decoded manifests (they are read
// from disk again on their next use), for a server giving memory back once
// its requests stopped.
func (c *Catalog) DropManifestCache() {
	if c.manifests != nil {
		c.manifests.Purge()
	}
}

// Package is one operator package.
type Package struct {
	Name           string
	DefaultChannel string
	Description    string
	Icon           *Icon
	// Channels sorted by name.
	Channels []*Channel
	// Bundles sorted by version, lowest first.
	Bundles     []*Bundle
	Deprecation *Deprecation

	channels map[string]*Channel
	bundles  map[string]*Bundle
}

// Icon is a package's icon.
type Icon struct {
	Base64Data string `json:"base64data"`
	MediaType  string `json:"mediatype"`
}

// Channel is an upgrade channel of a package.
type Channel struct {
	Package string
	Name    string
	// Head is the name of the entry no other entry replaces or skips.
	Head string
	// Entries sorted by bundle version, lowest first.
	Entries     []*ChannelEntry
	Deprecation *Deprecation
	// Properties of the channel, kept as found.
	Properties []Property

	entries map[string]*ChannelEntry
}

// ChannelEntry is one bundle's place in a channel and its upgrade edges.
type ChannelEntry struct {
	Name      string   `json:"name"`
	Replaces  string   `json:"replaces,omitempty"`
	Skips     []string `json:"skips,omitempty"`
	SkipRange string   `json:"skipRange,omitempty"`

	// Bundle is the bundle the entry names.
	Bundle    *Bundle      `json:"-"`
	skipRange semver.Range `json:"-"`
}

// Bundle is one installable version of a package.
type Bundle struct {
	Package string
	Name    string
	Version semver.Version
	Image   string
	// Properties without the bulky olm.bundle.object and olm.csv.metadata.
	Properties    []Property
	RelatedImages []RelatedImage
	// Channels names every channel that has an entry for this bundle, sorted.
	Channels    []string
	Deprecation *Deprecation
	// Source is the file or directory the bundle came from, relative to its catalog root.
	Source string

	// Derived from Properties.
	ProvidedAPIs     []GVK
	RequiredAPIs     []GVK
	RequiredPackages []PackageRequirement

	manifests manifestSource
	// csvMetadata is the olm.csv.metadata property value, when present.
	csvMetadata json.RawMessage
	// sum is the digest of the bundle's source document.
	sum [32]byte
	// manifestsDigest is ManifestsDigest of the manifests served, computed
	// at load; for an assembled catalog, what the server announced.
	manifestsDigest string
	// registryProperties and registryDependencies are what api.Registry
	// sends, computed at load (see registryForm).
	registryProperties   []Property
	registryDependencies []Property
}

// RelatedImage is an image a bundle needs.
type RelatedImage struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// Deprecation marks a package, channel or bundle deprecated.
type Deprecation struct {
	Message string
}

// Property is a typed property; Value is JSON text.
type Property struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// GVK names an API.
type GVK struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// String renders group/version, Kind=kind.
func (g GVK) String() string {
	if g.Group == "" {
		return g.Version + ", Kind=" + g.Kind
	}
	return g.Group + "/" + g.Version + ", Kind=" + g.Kind
}

// PackageRequirement is an olm.package.required property.
type PackageRequirement struct {
	PackageName  string `json:"packageName"`
	VersionRange string `json:"versionRange"`
}

// Meta is a document of a schema the model does not interpret.
type Meta struct {
	Schema  string
	Package string
	Name    string
	Blob    json.RawMessage
	Source  string
}

// Package returns the named package, or nil.
func (c *Catalog) Package(name string) *Package { return c.packages[name] }

// Bundle returns the named bundle of a package, or nil.
func (c *Catalog) Bundle(pkg, name string) *Bundle {
	p := c.packages[pkg]
	if p == nil {
		return nil
	}
	return p.bundles[name]
}

// FindBundle returns the bundle with the given name in any package, or nil.
func (c *Catalog) FindBundle(name string) *Bundle {
	for _, p := range c.Packages {
		if b := p.bundles[name]; b != nil {
			return b
		}
	}
	return nil
}

// Providers returns the bundles that provide the API, sorted by package and version.
func (c *Catalog) Providers(g GVK) []*Bundle { return c.providers[g] }

// Counts is the number of packages, channels and bundles.
type Counts struct {
	Packages, Channels, Bundles int
}

// Counts returns the catalog's size.
func (c *Catalog) Counts() Counts {
	n := Counts{Packages: len(c.Packages)}
	for _, p := range c.Packages {
		n.Channels += len(p.Channels)
		n.Bundles += len(p.Bundles)
	}
	return n
}

// Channel returns the named channel, or nil.
func (p *Package) Channel(name string) *Channel { return p.channels[name] }

// Bundle returns the named bundle, or nil.
func (p *Package) Bundle(name string) *Bundle { return p.bundles[name] }

// BundleByVersion returns the bundle with exactly this version, or nil.
func (p *Package) BundleByVersion(v semver.Version) *Bundle {
	i := sort.Search(len(p.Bundles), func(i int) bool { return p.Bundles[i].Version.GTE(v) })
	if i < len(p.Bundles) && p.Bundles[i].Version.EQ(v) {
		return p.Bundles[i]
	}
	return nil
}

// Entry returns the entry for the named bundle, or nil.
func (c *Channel) Entry(name string) *ChannelEntry { return c.entries[name] }

// HeadEntry returns the channel head's entry.
func (c *Channel) HeadEntry() *ChannelEntry { return c.entries[c.Head] }

// EdgeKind says how an entry is reachable from an installed bundle.
type EdgeKind string

// Upgrade edge kinds.
const (
	EdgeReplaces  EdgeKind = "replaces"
	EdgeSkips     EdgeKind = "skips"
	EdgeSkipRange EdgeKind = "skipRange"
)

// Successor is a channel entry that upgrades from some installed bundle.
type Successor struct {
	Entry *ChannelEntry
	Edge  EdgeKind
}

// Successors returns the entries of the channel with an upgrade edge from the
// bundle named from (whose version is v), sorted by version, highest first.
func (c *Channel) Successors(from string, v *semver.Version) []Successor {
	var out []Successor
	for i := len(c.Entries) - 1; i >= 0; i-- {
		e := c.Entries[i]
		if e.Name == from {
			continue
		}
		if kind, ok := e.UpgradesFrom(from, v); ok {
			out = append(out, Successor{Entry: e, Edge: kind})
		}
	}
	return out
}

// UpgradesFrom reports whether the entry is an upgrade from the named bundle
// with version v (v may be nil when unknown), and by which edge.
func (e *ChannelEntry) UpgradesFrom(from string, v *semver.Version) (EdgeKind, bool) {
	if e.Replaces != "" && e.Replaces == from {
		return EdgeReplaces, true
	}
	for _, s := range e.Skips {
		if s == from {
			return EdgeSkips, true
		}
	}
	if v != nil && e.skipRange != nil && e.skipRange(*v) {
		return EdgeSkipRange, true
	}
	return "", false
}

// InSkipRange reports whether v is inside the entry's skipRange.
func (e *ChannelEntry) InSkipRange(v semver.Version) bool {
	return e.skipRange != nil && e.skipRange(v)
}

// Digest is "sha256:<hex>" of the bundle's content.
func (b *Bundle) Digest() string { return "sha256:" + hex.EncodeToString(b.sum[:]) }

// ManifestsDigest is ManifestsDigest of the manifests the bundle serves,
// computed when the catalog was loaded. In a catalog assembled from a
// server's answers it is the digest the server announced, "" when the
// server announced none.
func (b *Bundle) ManifestsDigest() string { return b.manifestsDigest }

// RegistryProperties are the bundle's properties as operator-registry sends
// them in api.Registry answers: Properties with every value in RegistryJSON
// form. Computed at load; callers must not modify them.
func (b *Bundle) RegistryProperties() []Property { return b.registryProperties }

// RegistryDependencies are the legacy dependencies api.Registry sends:
// olm.gvk.required as olm.gvk with the same value, olm.package.required as
// olm.package {"packageName":…,"version":<range>}, in property order.
// Computed at load; callers must not modify them.
func (b *Bundle) RegistryDependencies() []Property { return b.registryDependencies }
