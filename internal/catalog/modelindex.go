package catalog

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/blang/semver/v4"
)

// The payload of an index file is the built model, as build returned it
// before bundle images were resolved, in a compact binary form that is
// decoded without validating anything again: build's checks ran when the
// index was written, by a catalogd whose build logic has the same
// buildVersion (the index header says which).
//
// The payload opens with a table of every distinct string of the model —
// their count, total length, each length, then their bytes — decoded into
// one string that all of the model's strings are parts of. After it, every
// number is a varint; a string is its position in the table; a slice or
// []byte is 0 when nil and length+1 otherwise, so that nil and empty come
// back as they went in. Pointers between objects are positions: a channel
// entry names its bundle by its position in the package's Bundles. A blob
// of on-disk manifests names its file by the position of its source and
// the path inside it, so the payload does not depend on where the source
// lies (the index key does).
//
// Byte slices of the model (property values, documents of other schemas,
// manifests kept in memory) share one copy of the payload after the table,
// which therefore lives as long as the catalog; strings share the table's
// one copy.

// Kinds of manifest sources in the payload.
const (
	manifestsNone   = 0
	manifestsInline = 1
	manifestsBlob   = 2
)

// imageOnly is a bundle document that lists its bundle by image only: its
// objects come from the bundle image (WithBundleImages), resolved on the
// built model at every load so that the index never holds what the bundle
// image cache happened to have.
type imageOnly struct {
	ref        BundleImage
	src, field string
	// bundle is the served bundle built from the document; nil when build
	// left it out.
	bundle *Bundle
}

// imageOnlyBundles lists the documents of cfg whose bundles have their
// objects in a bundle image, in document order, each with the bundle c
// serves for it.
func imageOnlyBundles(cfg *declConfig, c *Catalog) []imageOnly {
	var out []imageOnly
	for _, db := range cfg.bundles {
		if db.manifests != nil || db.Image == "" {
			continue
		}
		im := imageOnly{ref: BundleImage{Package: db.Package, Name: db.Name, Image: db.Image}, src: db.src, field: db.field}
		if db.built != nil && c.Bundle(db.Package, db.Name) == db.built {
			im.bundle = db.built
		}
		out = append(out, im)
	}
	return out
}

type encoder struct {
	b []byte
	// table lists the distinct strings in the order first written; index
	// is their position.
	table []string
	index map[string]uint64
}

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string) {
	i, ok := e.index[s]
	if !ok {
		i = uint64(len(e.table))
		e.index[s] = i
		e.table = append(e.table, s)
	}
	e.uint(i)
}
func (e *encoder) sum(s [32]byte) {
	e.b = append(e.b, s[:]...)
}

func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) bytes(b []byte) {
	if b == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(b)) + 1)
	e.b = append(e.b, b...)
}

func encodeSlice[T any](e *encoder, s []T, f func(*encoder, T)) {
	if s == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(s)) + 1)
	for _, v := range s {
		f(e, v)
	}
}

func (e *encoder) strs(s []string) { encodeSlice(e, s, (*encoder).str) }

func (e *encoder) props(ps []Property) {
	encodeSlice(e, ps, func(e *encoder, p Property) { e.str(p.Type); e.bytes(p.Value) })
}

func (e *encoder) deprecation(d *Deprecation) {
	e.bool(d != nil)
	if d != nil {
		e.str(d.Message)
	}
}

func (e *encoder) gvks(gs []GVK) {
	encodeSlice(e, gs, func(e *encoder, g GVK) { e.str(g.Group); e.str(g.Version); e.str(g.Kind) })
}

// encodeModel writes the built model c (problems not yet sorted, bundle
// images not resolved) and the image-only bundle documents.
func encodeModel(c *Catalog, images []imageOnly, sources []Source) ([]byte, error) {
	e := &encoder{b: make([]byte, 0, 1<<20), index: map[string]uint64{}}
	e.str(c.Digest)
	encodeSlice(e, c.Problems, func(e *encoder, p Problem) {
		e.str(p.Path)
		e.str(p.Field)
		e.str(p.Reason)
		e.str(string(p.Severity))
		e.str(p.Package)
		e.str(p.Bundle)
	})
	encodeSlice(e, c.Others, func(e *encoder, m Meta) {
		e.str(m.Schema)
		e.str(m.Package)
		e.str(m.Name)
		e.bytes(m.Blob)
		e.str(m.Source)
	})
	encodeSlice(e, images, func(e *encoder, im imageOnly) {
		e.str(im.ref.Package)
		e.str(im.ref.Name)
		e.str(im.ref.Image)
		e.str(im.src)
		e.str(im.field)
		e.bool(im.bundle != nil)
	})
	var err error
	encodeSlice(e, c.Packages, func(e *encoder, p *Package) {
		if err == nil {
			err = e.pkg(p, sources)
		}
	})
	if err != nil {
		return nil, err
	}
	t := &encoder{}
	total := 0
	for _, s := range e.table {
		total += len(s)
	}
	t.uint(uint64(len(e.table)))
	t.uint(uint64(total))
	for _, s := range e.table {
		t.uint(uint64(len(s)))
	}
	out := make([]byte, 0, len(t.b)+total+len(e.b))
	out = append(out, t.b...)
	for _, s := range e.table {
		out = append(out, s...)
	}
	return append(out, e.b...), nil
}

func (e *encoder) pkg(p *Package, sources []Source) error {
	e.str(p.Name)
	e.str(p.DefaultChannel)
	e.str(p.Description)
	e.bool(p.Icon != nil)
	if p.Icon != nil {
		e.str(p.Icon.Base64Data)
		e.str(p.Icon.MediaType)
	}
	e.deprecation(p.Deprecation)
	pos := make(map[*Bundle]int, len(p.Bundles))
	var err error
	encodeSlice(e, p.Bundles, func(e *encoder, b *Bundle) {
		pos[b] = len(pos)
		if err == nil {
			err = e.bundle(b, sources)
		}
	})
	if err != nil {
		return err
	}
	encodeSlice(e, p.Channels, func(e *encoder, ch *Channel) {
		e.str(ch.Name)
		e.str(ch.Head)
		e.deprecation(ch.Deprecation)
		e.props(ch.Properties)
		encodeSlice(e, ch.Entries, func(e *encoder, ce *ChannelEntry) {
			e.str(ce.Name)
			e.str(ce.Replaces)
			e.strs(ce.Skips)
			e.str(ce.SkipRange)
			i, ok := pos[ce.Bundle]
			if !ok && err == nil {
				err = fmt.Errorf("channel %q of package %q: entry %q names a bundle the package does not serve", ch.Name, p.Name, ce.Name)
			}
			e.uint(uint64(i))
		})
	})
	return err
}

func (e *encoder) bundle(b *Bundle, sources []Source) error {
	e.str(b.Name)
	e.uint(b.Version.Major)
	e.uint(b.Version.Minor)
	e.uint(b.Version.Patch)
	encodeSlice(e, b.Version.Pre, func(e *encoder, v semver.PRVersion) {
		e.str(v.VersionStr)
		e.uint(v.VersionNum)
		e.bool(v.IsNum)
	})
	e.strs(b.Version.Build)
	e.str(b.Image)
	e.props(b.Properties)
	encodeSlice(e, b.RelatedImages, func(e *encoder, r RelatedImage) { e.str(r.Name); e.str(r.Image) })
	e.strs(b.Channels)
	e.deprecation(b.Deprecation)
	e.str(b.Source)
	e.gvks(b.ProvidedAPIs)
	e.gvks(b.RequiredAPIs)
	encodeSlice(e, b.RequiredPackages, func(e *encoder, r PackageRequirement) { e.str(r.PackageName); e.str(r.VersionRange) })
	e.bytes(b.csvMetadata)
	e.sum(b.sum)
	e.str(b.manifestsDigest)
	// registryForm returns the properties themselves when no value
	// changes; so does decoding.
	shared := len(b.registryProperties) > 0 && len(b.registryProperties) == len(b.Properties) && &b.registryProperties[0] == &b.Properties[0]
	e.bool(shared)
	if !shared {
		e.props(b.registryProperties)
	}
	e.props(b.registryDependencies)
	switch m := b.manifests.(type) {
	case nil:
		e.uint(manifestsNone)
	case inlineManifests:
		e.uint(manifestsInline)
		encodeSlice(e, m, func(e *encoder, m Manifest) {
			e.str(m.APIVersion)
			e.str(m.Kind)
			e.str(m.Name)
			e.bytes(m.JSON)
		})
	case *blobRef:
		src, rel, ok := sourceOf(sources, m.path)
		if !ok {
			return fmt.Errorf("bundle %q: manifests file %s is in no catalog source", b.Name, m.path)
		}
		e.uint(manifestsBlob)
		e.uint(uint64(src))
		e.str(rel)
		e.int(m.off)
		e.int(m.n)
		e.int(m.size)
		e.int(m.modTime.UnixNano())
		e.bool(m.yaml)
		e.bool(m.located)
		encodeSlice(e, m.objects, func(e *encoder, o objectRef) {
			e.str(o.apiVersion)
			e.str(o.kind)
			e.str(o.name)
			e.int(int64(o.off))
			e.int(int64(o.n))
		})
		e.sum(m.sum)
	default:
		return fmt.Errorf("bundle %q: manifests of type %T cannot be indexed", b.Name, m)
	}
	return nil
}

// sourceOf finds the source whose directory holds the file p, and p's
// path inside it.
func sourceOf(sources []Source, p string) (int, string, bool) {
	for i, s := range sources {
		if s.Dir == "" {
			continue
		}
		dir := filepath.Clean(s.Dir)
		if !strings.HasSuffix(dir, string(filepath.Separator)) {
			dir += string(filepath.Separator)
		}
		if rel, ok := strings.CutPrefix(p, dir); ok {
			return i, rel, true
		}
	}
	return 0, "", false
}

// decoder reads a payload; the first error sticks and every read after it
// returns zero values. Every length is checked against what is left, so a
// damaged payload costs at most its own size in memory.
type decoder struct {
	b   []byte
	off int
	// base is where b starts in the payload.
	base  int
	err   error
	table []string
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("at byte %d: %s", d.base+d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("malformed number")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("malformed number")
		return 0
	}
	d.off += n
	return v
}

// small reads a number that must fit an int.
func (d *decoder) small() int {
	v := d.uint()
	if v > uint64(len(d.b)) {
		d.fail("number %d out of range", v)
		return 0
	}
	return int(v)
}

// raw returns the next n bytes, sharing the payload's memory; their
// capacity ends with them, so appending to them copies.
func (d *decoder) raw(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("length %d runs past the end", n)
		return nil
	}
	end := d.off + int(n)
	s := d.b[d.off:end:end]
	d.off = end
	return s
}

func (d *decoder) str() string {
	i := d.uint()
	if i >= uint64(len(d.table)) {
		d.fail("string %d of %d", i, len(d.table))
		return ""
	}
	return d.table[i]
}

// readTable reads the string table.
func (d *decoder) readTable() {
	n, total := d.uint(), d.uint()
	if left := uint64(len(d.b) - d.off); n > left || total > left {
		d.fail("a table of %d strings, %d bytes, cannot fit in the %d bytes left", n, total, left)
		return
	}
	lens := make([]uint64, n)
	sum := uint64(0)
	for i := range lens {
		lens[i] = d.uint()
		sum += lens[i]
		if sum > total {
			d.fail("string lengths exceed the table's %d bytes", total)
			return
		}
	}
	if sum != total {
		d.fail("string lengths add up to %d, the table has %d bytes", sum, total)
		return
	}
	all := string(d.raw(total))
	if d.err != nil {
		return
	}
	d.table = make([]string, n)
	off := uint64(0)
	for i, l := range lens {
		d.table[i] = all[off : off+l]
		off += l
	}
	// The model's byte slices keep what they point into alive: the rest
	// of the payload, not the table's bytes, which all now holds.
	rest := make([]byte, len(d.b)-d.off)
	copy(rest, d.b[d.off:])
	d.b, d.base, d.off = rest, d.base+d.off, 0
}

func (d *decoder) bytes() []byte {
	n := d.uint()
	if n == 0 {
		return nil
	}
	return d.raw(n - 1)
}

func (d *decoder) bool() bool {
	b := d.raw(1)
	if len(b) == 1 && b[0] > 1 {
		d.fail("malformed boolean")
	}
	return len(b) == 1 && b[0] == 1
}

func (d *decoder) sum() (s [32]byte) {
	copy(s[:], d.raw(32))
	return s
}

// decodeSlice reads a slice whose elements are encoded in at least min
// bytes each: no more elements are allocated than the bytes left can hold,
// which bounds what a damaged payload makes decoding allocate to a few
// dozen times its size (elements take at most about 20 times their
// minimal encoding).
func decodeSlice[T any](d *decoder, min int, f func(*decoder) T) []T {
	n := d.uint()
	if n == 0 || d.err != nil {
		return nil
	}
	n--
	if left := uint64(len(d.b) - d.off); n > left/uint64(min) {
		d.fail("%d elements of at least %d bytes cannot fit in the %d bytes left", n, min, left)
		return nil
	}
	out := make([]T, n)
	for i := range out {
		out[i] = f(d)
		if d.err != nil {
			return nil
		}
	}
	return out
}

func (d *decoder) strs() []string { return decodeSlice(d, 1, (*decoder).str) }

func (d *decoder) props() []Property {
	return decodeSlice(d, 2, func(d *decoder) Property { return Property{Type: d.str(), Value: d.bytes()} })
}

func (d *decoder) deprecation() *Deprecation {
	if !d.bool() {
		return nil
	}
	return &Deprecation{Message: d.str()}
}

func (d *decoder) gvks() []GVK {
	return decodeSlice(d, 3, func(d *decoder) GVK { return GVK{Group: d.str(), Version: d.str(), Kind: d.str()} })
}

// decodeModel reads what encodeModel wrote and links the model: its maps,
// the providers of every API and the parsed skip ranges. c.Problems are
// not sorted yet.
func decodeModel(payload []byte, sources []Source) (*Catalog, []imageOnly, error) {
	d := &decoder{b: payload}
	d.readTable()
	c := &Catalog{Digest: d.str()}
	c.Problems = decodeSlice(d, 6, func(d *decoder) Problem {
		return Problem{Path: d.str(), Field: d.str(), Reason: d.str(), Severity: Severity(d.str()), Package: d.str(), Bundle: d.str()}
	})
	c.Others = decodeSlice(d, 5, func(d *decoder) Meta {
		return Meta{Schema: d.str(), Package: d.str(), Name: d.str(), Blob: d.bytes(), Source: d.str()}
	})
	type imageDoc struct {
		im     imageOnly
		served bool
	}
	images := decodeSlice(d, 6, func(d *decoder) imageDoc {
		ref := BundleImage{Package: d.str(), Name: d.str(), Image: d.str()}
		return imageDoc{imageOnly{ref: ref, src: d.str(), field: d.str()}, d.bool()}
	})
	c.Packages = decodeSlice(d, 7, func(d *decoder) *Package { return d.pkg(sources) })
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d bytes after the model", len(d.b)-d.off)
	}
	if d.err != nil {
		return nil, nil, d.err
	}
	if err := link(c); err != nil {
		return nil, nil, err
	}
	out := make([]imageOnly, 0, len(images))
	for _, x := range images {
		if x.served {
			b := c.Bundle(x.im.ref.Package, x.im.ref.Name)
			if b == nil || b.Image != x.im.ref.Image || b.manifests != nil {
				return nil, nil, fmt.Errorf("bundle %q of package %q, listed by image only, is not served as such", x.im.ref.Name, x.im.ref.Package)
			}
			x.im.bundle = b
		}
		out = append(out, x.im)
	}
	return c, out, nil
}

func (d *decoder) pkg(sources []Source) *Package {
	p := &Package{Name: d.str(), DefaultChannel: d.str(), Description: d.str()}
	if d.bool() {
		p.Icon = &Icon{Base64Data: d.str(), MediaType: d.str()}
	}
	p.Deprecation = d.deprecation()
	p.Bundles = decodeSlice(d, 52, func(d *decoder) *Bundle { return d.bundle(p.Name, sources) })
	p.Channels = decodeSlice(d, 5, func(d *decoder) *Channel {
		ch := &Channel{Package: p.Name, Name: d.str(), Head: d.str(), Deprecation: d.deprecation(), Properties: d.props()}
		ch.Entries = decodeSlice(d, 5, func(d *decoder) *ChannelEntry {
			e := &ChannelEntry{Name: d.str(), Replaces: d.str(), Skips: d.strs(), SkipRange: d.str()}
			if i := d.small(); i < len(p.Bundles) {
				e.Bundle = p.Bundles[i]
			} else {
				d.fail("channel %q entry %q: bundle %d of %d", ch.Name, e.Name, i, len(p.Bundles))
			}
			return e
		})
		return ch
	})
	return p
}

func (d *decoder) bundle(pkg string, sources []Source) *Bundle {
	b := &Bundle{Package: pkg, Name: d.str()}
	b.Version = semver.Version{Major: d.uint(), Minor: d.uint(), Patch: d.uint()}
	b.Version.Pre = decodeSlice(d, 3, func(d *decoder) semver.PRVersion {
		return semver.PRVersion{VersionStr: d.str(), VersionNum: d.uint(), IsNum: d.bool()}
	})
	b.Version.Build = d.strs()
	b.Image = d.str()
	b.Properties = d.props()
	b.RelatedImages = decodeSlice(d, 2, func(d *decoder) RelatedImage { return RelatedImage{Name: d.str(), Image: d.str()} })
	b.Channels = d.strs()
	b.Deprecation = d.deprecation()
	b.Source = d.str()
	b.ProvidedAPIs = d.gvks()
	b.RequiredAPIs = d.gvks()
	b.RequiredPackages = decodeSlice(d, 2, func(d *decoder) PackageRequirement {
		return PackageRequirement{PackageName: d.str(), VersionRange: d.str()}
	})
	b.csvMetadata = d.bytes()
	b.sum = d.sum()
	b.manifestsDigest = d.str()
	if d.bool() {
		b.registryProperties = b.Properties
	} else {
		b.registryProperties = d.props()
	}
	b.registryDependencies = d.props()
	switch kind := d.uint(); kind {
	case manifestsNone:
	case manifestsInline:
		b.manifests = inlineManifests(decodeSlice(d, 4, func(d *decoder) Manifest {
			return Manifest{APIVersion: d.str(), Kind: d.str(), Name: d.str(), JSON: d.bytes()}
		}))
	case manifestsBlob:
		src := d.small()
		if src >= len(sources) || sources[src].Dir == "" {
			d.fail("bundle %q: manifests in source %d of %d", b.Name, src, len(sources))
			return b
		}
		r := &blobRef{path: filepath.Join(sources[src].Dir, d.str()), off: d.int(), n: d.int(), size: d.int()}
		r.modTime = time.Unix(0, d.int())
		r.yaml, r.located = d.bool(), d.bool()
		r.objects = decodeSlice(d, 5, func(d *decoder) objectRef {
			return objectRef{apiVersion: d.str(), kind: d.str(), name: d.str(), off: int(d.int()), n: int(d.int())}
		})
		r.sum = d.sum()
		b.manifests = r
	default:
		d.fail("bundle %q: unknown manifests kind %d", b.Name, kind)
	}
	return b
}

// link builds the maps of a decoded model and parses its skip ranges, and
// checks what a lookup relies on: names are unique, every channel's head
// is one of its entries.
func link(c *Catalog) error {
	c.packages = make(map[string]*Package, len(c.Packages))
	c.providers = map[GVK][]*Bundle{}
	for _, p := range c.Packages {
		if c.packages[p.Name] != nil {
			return fmt.Errorf("package %q twice", p.Name)
		}
		c.packages[p.Name] = p
		p.bundles = make(map[string]*Bundle, len(p.Bundles))
		for _, b := range p.Bundles {
			if p.bundles[b.Name] != nil {
				return fmt.Errorf("package %q: bundle %q twice", p.Name, b.Name)
			}
			p.bundles[b.Name] = b
			for _, g := range b.ProvidedAPIs {
				c.providers[g] = append(c.providers[g], b)
			}
		}
		p.channels = make(map[string]*Channel, len(p.Channels))
		for _, ch := range p.Channels {
			if p.channels[ch.Name] != nil {
				return fmt.Errorf("package %q: channel %q twice", p.Name, ch.Name)
			}
			p.channels[ch.Name] = ch
			ch.entries = make(map[string]*ChannelEntry, len(ch.Entries))
			for _, e := range ch.Entries {
				if ch.entries[e.Name] != nil {
					return fmt.Errorf("package %q channel %q: entry %q twice", p.Name, ch.Name, e.Name)
				}
				ch.entries[e.Name] = e
				if e.SkipRange != "" {
					r, err := parseRange(e.SkipRange)
					if err != nil {
						return fmt.Errorf("package %q channel %q entry %q: %w", p.Name, ch.Name, e.Name, err)
					}
					e.skipRange = r
				}
			}
			if ch.entries[ch.Head] == nil {
				return fmt.Errorf("package %q channel %q: head %q is not an entry", p.Name, ch.Name, ch.Head)
			}
		}
		if p.channels[p.DefaultChannel] == nil {
			return fmt.Errorf("package %q: default channel %q is not a channel", p.Name, p.DefaultChannel)
		}
	}
	return nil
}
