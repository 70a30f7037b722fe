package ocitest

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"path"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/ociimage"
)

// Push writes img to ref (host:port/repo:tag on a loopback registry) and
// returns its digest.
func Push(t testing.TB, ref string, img v1.Image) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// Without copies fsys leaving out the trees under the given slash paths,
// e.g. "lighthouse-operator/1.4.0".
func Without(t testing.TB, fsys fs.FS, skip ...string) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, s := range skip {
			if p == s || strings.HasPrefix(p, s+"/") {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
		}
		if d.IsDir() {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		out[p] = &fstest.MapFile{Data: data, Mode: 0o644}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ImageOnly loads the bundle tree in fsys, pushes every bundle as a bundle
// image to addr/bundles/<package>:<version>, and returns a catalog image
// of the tree that lists each bundle by its image, pinned by digest, and
// without its objects; bundles named in missing are listed with an image
// that was never pushed. want maps every bundle to its manifests digest as
// the tree has it.
func ImageOnly(t testing.TB, addr string, fsys fs.FS, missing ...string) (img v1.Image, want map[string]string) {
	t.Helper()
	c, err := catalog.Load(context.Background(), []catalog.Source{{Name: "tree", FS: fsys}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Problems) > 0 {
		t.Fatalf("bundle tree: %v", c.Problems)
	}
	want = map[string]string{}
	images := map[string]string{}
	for _, p := range c.Packages {
		for _, b := range p.Bundles {
			want[b.Name] = b.ManifestsDigest()
			if contains(missing, b.Name) {
				images[b.Name] = addr + "/bundles/never-pushed@sha256:" + strings.Repeat("0", 64)
				continue
			}
			dir, err := fs.Sub(fsys, path.Clean(strings.TrimPrefix(b.Source, "tree/")))
			if err != nil {
				t.Fatal(err)
			}
			bimg, err := ociimage.BuildBundleImage(dir)
			if err != nil {
				t.Fatalf("bundle %s from %s: %v", b.Name, b.Source, err)
			}
			digest := Push(t, addr+"/bundles/"+p.Name+":"+b.Version.String(), bimg)
			images[b.Name] = addr + "/bundles/" + p.Name + "@" + digest
		}
	}
	var full, imageOnly bytes.Buffer
	if err := catalog.Render(&full, c); err != nil {
		t.Fatal(err)
	}
	if err := ociimage.ImageOnlyCatalog(&imageOnly, &full, func(_, bundle string) string { return images[bundle] }); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(imageOnly.String(), catalog.PropertyBundleObject) {
		t.Fatal("the image-only catalog still has bundle objects")
	}
	img, err = ociimage.BuildCatalogImage(fstest.MapFS{"catalog.json": {Data: imageOnly.Bytes()}})
	if err != nil {
		t.Fatal(err)
	}
	return img, want
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// HelmChart is an OCI artifact shaped like a Helm chart: an image manifest
// whose one layer has the Helm chart media type, which no catalog reader
// takes for a tar layer.
func HelmChart(t testing.TB) v1.Image {
	t.Helper()
	data := []byte("not a catalog")
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType("application/vnd.cncf.helm.chart.content.v1.tar+gzip"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
