package catalog

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blang/semver/v4"
)

var updateIndexGolden = flag.Bool("update-index-golden", false, "record the encoded model of testdata/index/catalog for a new IndexFormatVersion or buildVersion")

const (
	indexGoldenCatalog = "testdata/index/catalog"
	indexGoldenFile    = "testdata/index/encoded-model.golden"
)

// indexGoldenFixture copies testdata/index/catalog to a new directory with
// fixed modification times, so that its encoded model does not depend on
// the checkout.
func indexGoldenFixture(t testing.TB) Source {
	t.Helper()
	dir := t.TempDir()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	err := filepath.WalkDir(indexGoldenCatalog, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(indexGoldenCatalog, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(to, data, 0o644); err != nil {
			return err
		}
		return os.Chtimes(to, at, at)
	})
	if err != nil {
		t.Fatal(err)
	}
	return Source{Name: "catalog", Dir: dir, Format: FormatFBC, Fingerprint: "sha256:golden"}
}

// TestIndexVersionGuard keeps an index from outliving the logic that wrote
// it: the encoded model of testdata/index/catalog is recorded per
// (IndexFormatVersion, buildVersion), and a change of what parsing, build
// or the encoding make of it fails here until one of the versions changes.
func TestIndexVersionGuard(t *testing.T) {
	src := indexGoldenFixture(t)
	c, images, err := parseAndBuild(context.Background(), []Source{src})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := encodeModel(c, images, []Source{src})
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("format %d build %d", IndexFormatVersion, buildVersion)
	got := "sha256:" + hex.EncodeToString(func() []byte { s := sha256.Sum256(payload); return s[:] }())
	recorded := readIndexGolden(t)
	want, ok := recorded[key]
	switch {
	case ok && want != got:
		t.Fatalf("the model built from %s encodes to %s, but %s recorded %s for %s.\n"+
			"What parsing or build make of a catalog changed: increase buildVersion (build.go); "+
			"if the encoding changed, increase IndexFormatVersion (index.go). Then run\n"+
			"\tgo test ./internal/catalog -run TestIndexVersionGuard -update-index-golden\n"+
			"An index written by the old logic must not be served by the new one.", indexGoldenCatalog, got, indexGoldenFile, want, key)
	case !ok && !*updateIndexGolden:
		t.Fatalf("%s records nothing for %s; run go test ./internal/catalog -run TestIndexVersionGuard -update-index-golden", indexGoldenFile, key)
	case !ok:
		f, err := os.OpenFile(indexGoldenFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		_, err = fmt.Fprintf(f, "%s %s\n", key, got)
		if err := errors.Join(err, f.Close()); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s %s", key, got)
	}
}

// readIndexGolden reads "format F build B sha256:…" lines.
func readIndexGolden(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	f, err := os.Open(indexGoldenFile)
	if errors.Is(err, os.ErrNotExist) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("%s: malformed line %q", indexGoldenFile, line)
		}
		out[line[:i]] = line[i+1:]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// encodedModel is the encoding of a loaded catalog: equal encodings mean
// equal models, field by field.
func encodedModel(t *testing.T, c *Catalog, sources []Source) []byte {
	t.Helper()
	b, err := encodeModel(c, nil, sources)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIndexModelRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		src  func(t *testing.T) Source
	}{
		{"golden fixture", func(t *testing.T) Source { return indexGoldenFixture(t) }},
		{"fixture with a deprecation and an unknown schema", func(t *testing.T) Source { return indexFixture(t, "sha256:aaa") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src(t)
			sources := []Source{src}
			ic := IndexConfig{Dir: t.TempDir()}
			parsed, err := Load(context.Background(), sources)
			if err != nil {
				t.Fatal(err)
			}
			written := loadWithIndex(t, src, ic)
			read := loadWithIndex(t, src, ic)
			if written.FromIndex || !read.FromIndex {
				t.Fatalf("FromIndex: first %t, second %t; want false, true", written.FromIndex, read.FromIndex)
			}
			want := encodedModel(t, parsed, sources)
			for name, c := range map[string]*Catalog{"written": written, "read": read} {
				if got := encodedModel(t, c, sources); string(got) != string(want) {
					t.Errorf("%s: the model differs from the parsed one", name)
				}
			}
			if d := digest(read); d != read.Digest || d != parsed.Digest {
				t.Errorf("digest: stored %s, recomputed %s, parsed %s", read.Digest, d, parsed.Digest)
			}
			if !reflect.DeepEqual(read.Sources, parsed.Sources) {
				t.Errorf("sources %v, want %v", read.Sources, parsed.Sources)
			}
			sameLinks(t, read, parsed)
			sameCatalogAnswers(t, read, parsed)
		})
	}
}

// sameLinks compares what the encoding does not carry but decoding links:
// lookups, providers, skip ranges.
func sameLinks(t *testing.T, got, want *Catalog) {
	t.Helper()
	names := func(bs []*Bundle) []string {
		var out []string
		for _, b := range bs {
			out = append(out, b.Package+"/"+b.Name)
		}
		return out
	}
	if len(got.providers) != len(want.providers) {
		t.Errorf("%d provided APIs, want %d", len(got.providers), len(want.providers))
	}
	for g, bs := range want.providers {
		if !reflect.DeepEqual(names(got.Providers(g)), names(bs)) {
			t.Errorf("providers of %s: %v, want %v", g, names(got.Providers(g)), names(bs))
		}
	}
	for _, wp := range want.Packages {
		gp := got.Package(wp.Name)
		if gp == nil {
			t.Fatalf("package %s missing", wp.Name)
		}
		for _, wb := range wp.Bundles {
			if gb := gp.Bundle(wb.Name); gb == nil || gp.BundleByVersion(wb.Version) != gb || got.Bundle(wp.Name, wb.Name) != gb {
				t.Errorf("bundle %s/%s is not found by name or version", wp.Name, wb.Name)
			}
		}
		for _, wc := range wp.Channels {
			gc := gp.Channel(wc.Name)
			if gc == nil || gc.HeadEntry() == nil || gc.HeadEntry().Name != wc.HeadEntry().Name {
				t.Fatalf("channel %s/%s or its head differs", wp.Name, wc.Name)
			}
			for _, we := range wc.Entries {
				ge := gc.Entry(we.Name)
				if ge == nil || ge.Bundle != gp.Bundle(we.Bundle.Name) {
					t.Fatalf("channel %s/%s entry %s is not linked to its bundle", wp.Name, wc.Name, we.Name)
				}
				for _, b := range wp.Bundles {
					if ge.InSkipRange(b.Version) != we.InSkipRange(b.Version) {
						t.Errorf("channel %s/%s entry %s: InSkipRange(%s) differs", wp.Name, wc.Name, we.Name, b.Version)
					}
					gs, ws := gc.Successors(b.Name, &b.Version), wc.Successors(b.Name, &b.Version)
					if len(gs) != len(ws) {
						t.Errorf("channel %s/%s: %d successors of %s, want %d", wp.Name, wc.Name, len(gs), b.Name, len(ws))
					}
				}
			}
		}
	}
}

// sameCatalogAnswers compares the manifests every bundle serves.
func sameCatalogAnswers(t *testing.T, got, want *Catalog) {
	t.Helper()
	for _, wp := range want.Packages {
		for _, wb := range wp.Bundles {
			gb := got.Bundle(wp.Name, wb.Name)
			gm, gerr := gb.Manifests()
			wm, werr := wb.Manifests()
			if fmt.Sprint(gerr) != fmt.Sprint(werr) || !reflect.DeepEqual(gm, wm) || gb.HasManifests() != wb.HasManifests() {
				t.Errorf("bundle %s manifests: %d (%v), want %d (%v)", wb.Name, len(gm), gerr, len(wm), werr)
			}
		}
	}
}

// TestDecodeModelDamaged decodes every truncation and every one-byte
// change of a payload: a damaged payload is an error or a model, never a
// panic, and a truncated one is always an error.
func TestDecodeModelDamaged(t *testing.T) {
	src := indexGoldenFixture(t)
	sources := []Source{src}
	c, images, err := parseAndBuild(context.Background(), sources)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := encodeModel(c, images, sources)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := decodeModel(payload, sources); err != nil {
		t.Fatalf("the intact payload: %v", err)
	}
	for n := 0; n < len(payload); n++ {
		if _, _, err := decodeModel(payload[:n:n], sources); err == nil {
			t.Fatalf("the payload cut to %d of %d bytes decoded", n, len(payload))
		}
	}
	damaged := make([]byte, len(payload))
	for i := range payload {
		for _, b := range []byte{0x00, 0x7f, 0x80, 0xff} {
			copy(damaged, payload)
			damaged[i] = b
			_, _, _ = decodeModel(damaged, sources)
		}
	}
	// Several bytes at once, at seeded random places.
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		copy(damaged, payload)
		for range 1 + r.IntN(8) {
			damaged[r.IntN(len(damaged))] = byte(r.IntN(256))
		}
		_, _, _ = decodeModel(damaged, sources)
	}
}

func FuzzDecodeModel(f *testing.F) {
	src := indexGoldenFixture(f)
	sources := []Source{src}
	c, images, err := parseAndBuild(context.Background(), sources)
	if err != nil {
		f.Fatal(err)
	}
	payload, err := encodeModel(c, images, sources)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(payload)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := decodeModel(data, sources)
		if err != nil {
			return
		}
		// Whatever decodes is linked: every lookup finds what it lists.
		for _, p := range c.Packages {
			for _, ch := range p.Channels {
				if ch.HeadEntry() == nil {
					t.Fatalf("channel %s has no head entry", ch.Name)
				}
				for _, e := range ch.Entries {
					if e.Bundle == nil {
						t.Fatalf("entry %s has no bundle", e.Name)
					}
				}
			}
		}
	})
}

// modelFields is the number of fields of each type the index encodes.
// A field added to the model must be encoded (modelindex.go) before it is
// counted here, and the index format version increased.
var modelFields = map[reflect.Type]int{
	// Catalog.manifests, like blobRef.cache, is the load's cache, set
	// after the model is parsed or read from the index, and not encoded.
	reflect.TypeFor[Catalog]():      10,
	reflect.TypeFor[Package]():      9,
	reflect.TypeFor[Channel]():      7,
	reflect.TypeFor[ChannelEntry](): 6,
	reflect.TypeFor[Bundle]():       18,
	reflect.TypeFor[blobRef]():      10,
	reflect.TypeFor[objectRef]():    5,
	reflect.TypeFor[Manifest]():     4,
	reflect.TypeFor[Problem]():      6,
	reflect.TypeFor[Meta]():         5,
	reflect.TypeFor[Icon]():         2,
	reflect.TypeFor[Deprecation]():  1,
	reflect.TypeFor[Property]():     2,
	reflect.TypeFor[RelatedImage](): 2,
	reflect.TypeFor[GVK]():          3,
	reflect.TypeFor[BundleImage]():  3,
	reflect.TypeFor[imageOnly]():    4,
	// Bundle.Version, encoded field by field.
	reflect.TypeFor[semver.Version]():   5,
	reflect.TypeFor[semver.PRVersion](): 3,
}

func TestIndexEncodesEveryModelField(t *testing.T) {
	for typ, n := range modelFields {
		if got := typ.NumField(); got != n {
			t.Errorf("%s has %d fields, the index encodes %d: encode and decode the new fields in modelindex.go, increase IndexFormatVersion, then update modelFields", typ, got, n)
		}
	}
}

// testBundleImages serves the objects of bundle images from memory: those
// in cached are at hand, the others are pulled, and fail for images in
// failing.
type testBundleImages struct {
	mu      sync.Mutex
	cached  map[string][]Manifest
	failing map[string]bool
}

func (bi *testBundleImages) objects(ref BundleImage) []Manifest {
	json := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q}}`, ref.Name)
	return []Manifest{{APIVersion: "v1", Kind: "ConfigMap", Name: ref.Name, JSON: []byte(json)}}
}

func (bi *testBundleImages) Cached(ref BundleImage) ([]Manifest, bool) {
	bi.mu.Lock()
	defer bi.mu.Unlock()
	ms, ok := bi.cached[ref.Image]
	return ms, ok
}

func (bi *testBundleImages) Pull(_ context.Context, ref BundleImage) ([]Manifest, error) {
	bi.mu.Lock()
	defer bi.mu.Unlock()
	if bi.failing[ref.Image] {
		return nil, errors.New("registry unavailable")
	}
	return bi.objects(ref), nil
}

// TestIndexBundleImages checks that bundles listed by image only get the
// same objects, manifests digests, catalog digest and problems whether the
// catalog was parsed or read from its index, whatever the bundle image
// cache held when the index was written.
func TestIndexBundleImages(t *testing.T) {
	const (
		served  = "quay.io/example/beta-bundle:v0.1.0"
		first   = "quay.io/example/beta-bundle:v0.3.0"
		dropped = "quay.io/example/beta-bundle:v0.3.0-again"
	)
	images := func(cached []string, failing ...string) *testBundleImages {
		bi := &testBundleImages{cached: map[string][]Manifest{}, failing: map[string]bool{}}
		for _, im := range cached {
			bi.cached[im] = bi.objects(BundleImage{Name: "cached"})
		}
		for _, im := range failing {
			bi.failing[im] = true
		}
		return bi
	}
	tests := []struct {
		name string
		// atWrite is what the bundle image cache holds when the index is
		// written, atRead when it is read.
		atWrite, atRead []string
		failing         []string
		eager           bool
	}{
		{"lazy, nothing cached", nil, nil, nil, false},
		{"lazy, cached when written, not when read", []string{served, first}, nil, nil, false},
		{"lazy, cached when read", nil, []string{served}, nil, false},
		{"eager, pulls succeed", nil, nil, nil, true},
		{"eager, pulls fail, also of the bundle not served", nil, nil, []string{served, dropped}, true},
		{"eager, one cached", []string{first}, []string{first}, []string{served}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := indexGoldenFixture(t)
			sources := []Source{src}
			ic := IndexConfig{Dir: t.TempDir()}
			ctx := context.Background()
			if _, err := Load(ctx, sources, WithIndex(ic), WithBundleImages(images(tt.atWrite, tt.failing...), tt.eager)); err != nil {
				t.Fatal(err)
			}
			parsed, err := Load(ctx, sources, WithBundleImages(images(tt.atRead, tt.failing...), tt.eager))
			if err != nil {
				t.Fatal(err)
			}
			bi := images(tt.atRead, tt.failing...)
			read, err := Load(ctx, sources, WithIndex(ic), WithBundleImages(bi, tt.eager))
			if err != nil {
				t.Fatal(err)
			}
			if !read.FromIndex {
				t.Fatal("not read from the index")
			}
			if read.Digest != parsed.Digest || digest(read) != read.Digest {
				t.Errorf("digest %s (recomputed %s), parsed %s", read.Digest, digest(read), parsed.Digest)
			}
			if !reflect.DeepEqual(read.Problems, parsed.Problems) {
				t.Errorf("problems\n%v\nparsed\n%v", read.Problems, parsed.Problems)
			}
			for _, name := range []string{"beta.v0.1.0", "beta.v0.3.0"} {
				g, w := read.Bundle("beta", name), parsed.Bundle("beta", name)
				if g.ManifestsDigest() != w.ManifestsDigest() || g.HasManifests() != w.HasManifests() {
					t.Errorf("%s: manifests digest %q (has manifests %t), parsed %q (%t)", name, g.ManifestsDigest(), g.HasManifests(), w.ManifestsDigest(), w.HasManifests())
				}
			}
			sameCatalogAnswers(t, read, parsed)
		})
	}
}

func TestSourceOf(t *testing.T) {
	sources := []Source{{Name: "fs"}, {Dir: "/srv/a/"}, {Dir: "rel/b"}, {Dir: "/"}}
	tests := []struct {
		name, path string
		src        int
		rel        string
		ok         bool
	}{
		{"absolute directory with a trailing slash", "/srv/a/x/catalog.json", 1, "x/catalog.json", true},
		{"relative directory", "rel/b/catalog.yaml", 2, "catalog.yaml", true},
		{"a sibling with the same prefix is not inside", "/srv/ab/catalog.json", 3, "srv/ab/catalog.json", true},
		{"the root holds every absolute path", "/etc/catalog.json", 3, "etc/catalog.json", true},
		{"in no source", "elsewhere/catalog.json", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, rel, ok := sourceOf(sources, tt.path)
			if src != tt.src || rel != tt.rel || ok != tt.ok {
				t.Errorf("sourceOf(%q) = %d, %q, %t; want %d, %q, %t", tt.path, src, rel, ok, tt.src, tt.rel, tt.ok)
			}
			if ok && filepath.Join(sources[src].Dir, rel) != tt.path {
				t.Errorf("joined back: %s", filepath.Join(sources[src].Dir, rel))
			}
		})
	}
}

// TestDecodeModelSmallest decodes models whose elements are encoded in
// the fewest bytes each, the bound decodeSlice checks counts against.
func TestDecodeModelSmallest(t *testing.T) {
	b := &Bundle{Name: "b"}
	e := &ChannelEntry{Name: "b", Bundle: b}
	ch := &Channel{Name: "c", Head: "b", Entries: []*ChannelEntry{e}}
	p := &Package{Name: "p", DefaultChannel: "c", Bundles: []*Bundle{b}, Channels: []*Channel{ch}}
	b.Package = p.Name
	ch.Package = p.Name
	tests := []struct {
		name string
		c    *Catalog
	}{
		{"empty", &Catalog{}},
		{"empty elements", &Catalog{Packages: []*Package{p}, Problems: Problems{{}}, Others: []Meta{{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			images := []imageOnly{{}}
			payload, err := encodeModel(tt.c, images, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, gotImages, err := decodeModel(payload, nil)
			if err != nil {
				t.Fatal(err)
			}
			again, err := encodeModel(got, gotImages, nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(payload) {
				t.Error("decoded and encoded again, the model differs")
			}
		})
	}
}

// TestIndexRoundTripCommunityCatalog reads the real-size community
// catalog back from its index: the model is the parsed one, byte for byte.
func TestIndexRoundTripCommunityCatalog(t *testing.T) {
	archive := corpusFile(t, "community-prod-full-fbc.tar.xz")
	dir := t.TempDir()
	extract(t, archive, dir)
	src := Source{Name: "community", Dir: dir, Format: FormatFBC, Fingerprint: "sha256:community"}
	sources := []Source{src}
	parsed, err := Load(context.Background(), sources)
	if err != nil {
		t.Fatal(err)
	}
	ic := IndexConfig{Dir: t.TempDir()}
	loadWithIndex(t, src, ic)
	read := loadWithIndex(t, src, ic)
	if !read.FromIndex {
		t.Fatal("not read from the index")
	}
	if string(encodedModel(t, read, sources)) != string(encodedModel(t, parsed, sources)) {
		t.Fatal("the model read from the index differs from the parsed one")
	}
	if read.Digest != parsed.Digest || digest(read) != parsed.Digest {
		t.Errorf("digest %s (recomputed %s), parsed %s", read.Digest, digest(read), parsed.Digest)
	}
	sameLinksCounted(t, read, parsed)
}

// sameLinksCounted is sameLinks without the per-bundle successor walk,
// which is quadratic in a channel's size.
func sameLinksCounted(t *testing.T, got, want *Catalog) {
	t.Helper()
	if len(got.providers) != len(want.providers) {
		t.Errorf("%d provided APIs, want %d", len(got.providers), len(want.providers))
	}
	for g, bs := range want.providers {
		if len(got.Providers(g)) != len(bs) {
			t.Errorf("providers of %s: %d, want %d", g, len(got.Providers(g)), len(bs))
		}
	}
	for _, wp := range want.Packages {
		gp := got.Package(wp.Name)
		if gp == nil || len(gp.Bundles) != len(wp.Bundles) {
			t.Fatalf("package %s differs", wp.Name)
		}
		for _, wc := range wp.Channels {
			gc := gp.Channel(wc.Name)
			if gc == nil {
				t.Fatalf("channel %s/%s missing", wp.Name, wc.Name)
			}
			for _, we := range wc.Entries {
				ge := gc.Entry(we.Name)
				if ge == nil || ge.Bundle != gp.Bundle(we.Bundle.Name) || ge.InSkipRange(we.Bundle.Version) != we.InSkipRange(we.Bundle.Version) {
					t.Fatalf("channel %s/%s entry %s differs", wp.Name, wc.Name, we.Name)
				}
			}
		}
	}
}
