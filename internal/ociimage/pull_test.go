package ociimage

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/testregistry"
)

// sampleFBC renders the embedded sample catalog as a file-based catalog.
func sampleFBC(t *testing.T) fstest.MapFS {
	t.Helper()
	c, err := catalog.Load(context.Background(), []catalog.Source{{Name: "bundles", FS: bundles.FS}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := catalog.Render(&buf, c); err != nil {
		t.Fatal(err)
	}
	return fstest.MapFS{"catalog/catalog.json": {Data: buf.Bytes(), Mode: 0o644}}
}

func newTestClient(t *testing.T, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(append([]Option{WithCacheDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func push(t *testing.T, c *Client, ref string, img v1.Image) name.Digest {
	t.Helper()
	d, err := c.Push(context.Background(), ref, img)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPullFromRegistryProcess: a catalog image and a bundle image pushed
// to hack/registry, running as its own process, are pulled, verified and
// unpacked; the second pull of the same digest downloads nothing.
func TestPullFromRegistryProcess(t *testing.T) {
	addr := testregistry.Start(t)
	ctx := context.Background()
	c := newTestClient(t)
	fbc := sampleFBC(t)
	img, err := BuildCatalogImage(fbc)
	if err != nil {
		t.Fatal(err)
	}
	ref := "oci://" + addr + "/ferry/catalog:v1"
	pinned := push(t, c, ref, img)

	got, err := c.PullCatalog(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cached || got.Digest != pinned.DigestStr() || got.ImageDigest != pinned.DigestStr() {
		t.Fatalf("pulled %+v, want digest %s, not from the cache", got, pinned.DigestStr())
	}
	data, err := os.ReadFile(filepath.Join(got.Dir, "catalog", "catalog.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, fbc["catalog/catalog.json"].Data) {
		t.Fatal("the unpacked catalog differs from the one pushed")
	}
	if got.Labels[LabelConfigs] != DefaultConfigsDir {
		t.Fatalf("labels %v", got.Labels)
	}
	again, err := c.PullCatalog(ctx, "oci://"+pinned.String())
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Dir != got.Dir {
		t.Fatalf("second pull %+v, want the cached %s", again, got.Dir)
	}

	sub, err := fsSub(bundles.FS, "lighthouse-operator/1.3.0")
	if err != nil {
		t.Fatal(err)
	}
	bimg, err := BuildBundleImage(sub)
	if err != nil {
		t.Fatal(err)
	}
	bref := addr + "/ferry/lighthouse-operator-bundle:1.3.0"
	push(t, c, bref, bimg)
	bc, err := c.PullBundle(ctx, bref)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := catalog.Load(ctx, []catalog.Source{{Name: bref, Dir: bc.Dir, Format: catalog.FormatBundle}})
	if err != nil {
		t.Fatal(err)
	}
	if b := loaded.FindBundle("lighthouse-operator.v1.3.0"); b == nil || !b.HasManifests() || len(loaded.Problems) > 0 {
		t.Fatalf("bundle image did not load as a bundle: %v", loaded.Problems)
	}
	// A catalog image is not a bundle image.
	if _, err := c.PullBundle(ctx, ref); !errors.Is(err, ErrNoContent) {
		t.Fatalf("catalog pulled as a bundle: %v", err)
	}
}

// TestPullFailures: every way a registry or an image can be wrong gives a
// precise error of its kind.
func TestPullFailures(t *testing.T) {
	ctx := context.Background()
	fbc := sampleFBC(t)
	img, err := BuildCatalogImage(fbc)
	if err != nil {
		t.Fatal(err)
	}
	helm, err := mutate.AppendLayers(img, staticLayer{mt: "application/vnd.cncf.helm.chart.content.v1.tar+gzip"})
	if err != nil {
		t.Fatal(err)
	}
	noConfigs, err := BuildBundleImage(fstest.MapFS{"manifests/a.yaml": {Data: []byte("a")}, "metadata/annotations.yaml": {Data: []byte(
		"annotations:\n  operators.operatorframework.io.bundle.mediatype.v1: registry+v1\n  operators.operatorframework.io.bundle.package.v1: p\n  operators.operatorframework.io.bundle.channels.v1: c\n")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		img   v1.Image
		setup func(f *testregistry.Faulty)
		opts  func(t *testing.T, f *testregistry.Faulty) []Option
		kind  error
		msg   string
	}{
		{name: "corrupted blob", img: img, setup: func(f *testregistry.Faulty) { f.CorruptBlobs(true) }, kind: ErrDigestMismatch, msg: "content does not match its digest"},
		{name: "missing manifest", img: img, setup: func(f *testregistry.Faulty) { f.HideManifests(true) }, kind: ErrNotFound, msg: "MANIFEST_UNKNOWN"},
		{name: "wrong layer media type", img: helm, kind: ErrMediaType, msg: `"application/vnd.cncf.helm.chart.content.v1.tar+gzip" is not an OCI or Docker layer`},
		{name: "no catalog directory", img: noConfigs, kind: ErrNoContent, msg: "the image has no directory /configs"},
		{name: "registry down", img: img, setup: func(f *testregistry.Faulty) { f.Stop() }, msg: "connection refused"},
		{name: "401 without credentials", img: img, setup: func(f *testregistry.Faulty) { f.RequireAuth("ci", "s3cret") }, kind: ErrUnauthorized, msg: "--registry-config"},
		{name: "401 with wrong credentials", img: img, setup: func(f *testregistry.Faulty) { f.RequireAuth("ci", "s3cret") },
			opts: func(t *testing.T, f *testregistry.Faulty) []Option {
				return []Option{WithDockerConfig(dockerConfig(t, f.Addr, "ci", "wrong"))}
			}, kind: ErrUnauthorized},
		{name: "credentials from the Docker config", img: img, setup: func(f *testregistry.Faulty) { f.RequireAuth("ci", "s3cret") },
			opts: func(t *testing.T, f *testregistry.Faulty) []Option {
				return []Option{WithDockerConfig(dockerConfig(t, f.Addr, "ci", "s3cret"))}
			}},
		{name: "a catalog larger than the limit", img: img, opts: func(*testing.T, *testregistry.Faulty) []Option {
			l := DefaultLimits()
			l.MaxCatalogBytes = 512
			return []Option{WithLimits(l)}
		}, kind: ErrLimit, msg: "more than 512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := testregistry.NewFaulty(t)
			ref := f.Addr + "/ferry/catalog:v1"
			if err := remote.Write(mustRef(t, ref), tc.img); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(f)
			}
			var opts []Option
			if tc.opts != nil {
				opts = tc.opts(t, f)
			}
			c := newTestClient(t, opts...)
			got, err := c.PullCatalog(ctx, "oci://"+ref)
			if tc.kind == nil && tc.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(got.Dir, "catalog", "catalog.json")); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("pulled")
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), ref) {
				t.Fatalf("error %q does not name the image and say %q", err, tc.msg)
			}
			ents, _ := os.ReadDir(filepath.Join(c.CacheDir(), "catalogs"))
			if len(ents) != 0 {
				t.Fatalf("a failed pull left %d entries in the cache", len(ents))
			}
		})
	}
}

// TestTagMovedMidPull: the tag is resolved once and the digest pulled; an
// image pushed to the tag meanwhile is the next pull's.
func TestTagMovedMidPull(t *testing.T) {
	ctx := context.Background()
	f := testregistry.NewFaulty(t)
	ref := f.Addr + "/ferry/catalog:v1"
	first, err := BuildCatalogImage(sampleFBC(t))
	if err != nil {
		t.Fatal(err)
	}
	second, err := BuildCatalogImage(fstest.MapFS{"catalog/catalog.json": {Data: []byte(`{"schema":"olm.package","name":"other"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, ref), first); err != nil {
		t.Fatal(err)
	}
	f.OnFirstBlob(func() {
		if err := remote.Write(mustRef(t, ref), second); err != nil {
			t.Error(err)
		}
	})
	c := newTestClient(t)
	got, err := c.PullCatalog(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := first.Digest()
	d2, _ := second.Digest()
	if got.Digest != d1.String() {
		t.Fatalf("pulled %s, want the digest resolved first, %s", got.Digest, d1)
	}
	next, err := c.PullCatalog(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if next.Digest != d2.String() {
		t.Fatalf("next pull %s, want %s", next.Digest, d2)
	}
}

// TestCacheKeeping: the last digest of a reference is remembered for a
// start without the registry, and pruning keeps what is asked.
func TestCacheKeeping(t *testing.T) {
	ctx := context.Background()
	f := testregistry.NewFaulty(t)
	ref := f.Addr + "/ferry/catalog:v1"
	img, err := BuildCatalogImage(sampleFBC(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, ref), img); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c, err := NewClient(WithCacheDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.PullCatalog(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Remember(KindCatalog, ref, got.Digest); err != nil {
		t.Fatal(err)
	}
	f.Stop()
	c2, err := NewClient(WithCacheDir(dir), WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.PullCatalog(ctx, ref); err == nil {
		t.Fatal("pulled from a stopped registry")
	}
	last, ok := c2.LastKnown(KindCatalog, ref)
	if !ok || last.Dir != got.Dir {
		t.Fatalf("last known %+v %v, want %s", last, ok, got.Dir)
	}
	if err := c2.PruneCatalogs(got.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(got.Dir); err != nil {
		t.Fatalf("pruned the kept digest: %v", err)
	}
	if err := c2.PruneCatalogs(); err != nil {
		t.Fatal(err)
	}
	if _, ok := c2.LastKnown(KindCatalog, ref); ok {
		t.Fatal("a pruned digest is still known")
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func dockerConfig(t *testing.T, registry, user, password string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	if err := os.WriteFile(p, fmt.Appendf(nil, `{"auths":{"http://%s/v2/":{"auth":%q}}}`, registry, auth), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// staticLayer is a layer of any media type, for the media type check.
type staticLayer struct{ mt types.MediaType }

func (l staticLayer) data() []byte { return []byte("not a tar") }
func (l staticLayer) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(l.data()))
	return h, err
}
func (l staticLayer) DiffID() (v1.Hash, error) { return l.Digest() }
func (l staticLayer) Compressed() (rcCloser, error) {
	return nopCloser{bytes.NewReader(l.data())}, nil
}
func (l staticLayer) Uncompressed() (rcCloser, error) { return l.Compressed() }
func (l staticLayer) Size() (int64, error)            { return int64(len(l.data())), nil }
func (l staticLayer) MediaType() (types.MediaType, error) {
	return l.mt, nil
}

// TestBundleCacheBound: unpacked bundle images beyond BundleCacheBytes are
// removed, least recently used first, never the one just pulled.
func TestBundleCacheBound(t *testing.T) {
	ctx := context.Background()
	f := testregistry.NewFaulty(t)
	var refs []string
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		sub, err := fsSub(bundles.FS, "lighthouse-operator/"+v)
		if err != nil {
			t.Fatal(err)
		}
		img, err := BuildBundleImage(sub)
		if err != nil {
			t.Fatal(err)
		}
		ref := f.Addr + "/bundles/lighthouse-operator:" + v
		if err := remote.Write(mustRef(t, ref), img); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	// The sizes, from a cache of their own.
	sizes := newTestClient(t)
	var size []int64
	for _, ref := range refs {
		got, err := sizes.PullBundle(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		size = append(size, got.Bytes)
	}
	// Room for the two newest, which are larger than the oldest.
	limits := DefaultLimits()
	limits.BundleCacheBytes = size[1] + size[2]
	c := newTestClient(t, WithLimits(limits))
	first, err := c.PullBundle(ctx, refs[0])
	if err != nil {
		t.Fatal(err)
	}
	var pulled []*Content
	for _, ref := range refs[1:] {
		got, err := c.PullBundle(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		pulled = append(pulled, got)
	}
	if _, err := os.Stat(first.Dir); err == nil {
		t.Fatal("the least recently used bundle image is still on disk")
	}
	for _, p := range pulled {
		if _, err := os.Stat(p.Dir); err != nil {
			t.Fatalf("a recent bundle image was removed: %v", err)
		}
	}
}

// TestRegistryCA: a registry with a certificate of its own is trusted
// with WithCAFile and refused without it.
func TestRegistryCA(t *testing.T) {
	ctx := context.Background()
	addr, caFile := testregistry.NewTLS(t)
	img, err := BuildCatalogImage(sampleFBC(t))
	if err != nil {
		t.Fatal(err)
	}
	ref := addr + "/ferry/catalog:v1"
	trusting := newTestClient(t, WithCAFile(caFile))
	push(t, trusting, ref, img)
	if _, err := trusting.PullCatalog(ctx, ref); err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	plain := newTestClient(t)
	_, err = plain.PullCatalog(ctx, ref)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v, want a certificate error", err)
	}
	if _, err := NewClient(WithCAFile(filepath.Join(t.TempDir(), "missing.crt"))); err == nil || !strings.Contains(err.Error(), "registry CA file") {
		t.Fatalf("a missing CA file: %v", err)
	}
}
