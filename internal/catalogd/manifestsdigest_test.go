package catalogd_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// Every Bundle answer announces the manifests digest computed at load, with
// and without manifests, and the manifests served hash to it: for the
// sample catalog as embedded, and rendered as a file-based catalog whose
// manifests are read again from disk for each answer.
func TestNativeManifestsDigest(t *testing.T) {
	sample := sampleCatalog(t)
	for _, tc := range []struct {
		name string
		load func(t *testing.T) *catalog.Catalog
	}{
		{name: "sample catalog", load: func(*testing.T) *catalog.Catalog { return sample }},
		{name: "sample catalog as FBC on disk", load: func(t *testing.T) *catalog.Catalog {
			dir := t.TempDir()
			f, err := os.Create(filepath.Join(dir, "catalog.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := catalog.Render(f, sample); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			return loadDir(t, dir, catalog.WithManifestCache(0))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.load(t)
			cl := catalogv1.NewCatalogServiceClient(startServer(t, catalogd.NewHolder(c)))
			ctx := context.Background()
			announced := map[string]string{}
			for _, p := range c.Packages {
				for _, b := range p.Bundles {
					announced[b.Name] = b.ManifestsDigest()
				}
			}
			if len(announced) != 11 {
				t.Fatalf("%d bundles, want the sample's 11", len(announced))
			}
			check := func(where string, b *catalogv1.Bundle, withManifests bool) {
				t.Helper()
				want := announced[b.GetName()]
				if want == "" || b.GetManifestsDigest() != want {
					t.Errorf("%s: bundle %s announces manifests digest %q, the catalog computed %q", where, b.GetName(), b.GetManifestsDigest(), want)
				}
				if !withManifests {
					return
				}
				if len(b.GetManifests()) == 0 {
					t.Errorf("%s: bundle %s has no manifests", where, b.GetName())
				}
				if got := catalog.ManifestsDigest(manifestsOf(b)); got != b.GetManifestsDigest() {
					t.Errorf("%s: the manifests of bundle %s hash to %s, announced %s", where, b.GetName(), got, b.GetManifestsDigest())
				}
			}
			seen := map[string]int{}
			for _, p := range c.Packages {
				for _, b := range p.Bundles {
					got, err := cl.GetBundle(ctx, &catalogv1.GetBundleRequest{Package: p.Name, Name: b.Name})
					if err != nil {
						t.Fatalf("GetBundle %s: %v", b.Name, err)
					}
					check("GetBundle", got, true)
					seen[b.Name]++
				}
				for _, withManifests := range []bool{false, true} {
					stream, err := cl.ListBundles(ctx, &catalogv1.ListBundlesRequest{Package: p.Name, IncludeManifests: withManifests})
					if err != nil {
						t.Fatal(err)
					}
					bs, err := recvAll[catalogv1.Bundle](stream)
					if err != nil {
						t.Fatal(err)
					}
					for _, b := range bs {
						check("ListBundles", b, withManifests)
						seen[b.Name]++
					}
				}
			}
			stream, err := cl.GetSnapshot(ctx, &catalogv1.GetSnapshotRequest{})
			if err != nil {
				t.Fatal(err)
			}
			chunks, err := recvAll[catalogv1.SnapshotChunk](stream)
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range chunks {
				if b := ch.GetBundle(); b != nil {
					check("GetSnapshot", b, false)
					seen[b.Name]++
				}
			}
			for name := range announced {
				if seen[name] < 4 {
					t.Errorf("bundle %s answered %d times, want 4 (GetBundle, ListBundles with and without manifests, GetSnapshot)", name, seen[name])
				}
			}
		})
	}
}

// manifestsOf converts manifests as a client receives them.
func manifestsOf(b *catalogv1.Bundle) []catalog.Manifest {
	out := make([]catalog.Manifest, 0, len(b.GetManifests()))
	for _, m := range b.GetManifests() {
		out = append(out, catalog.Manifest{APIVersion: m.GetApiVersion(), Kind: m.GetKind(), Name: m.GetName(), JSON: []byte(m.GetJson())})
	}
	return out
}
