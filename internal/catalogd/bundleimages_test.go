package catalogd

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/ociimage"
	"github.com/ferrydev/ferry/internal/ociimage/ocitest"
	"github.com/ferrydev/ferry/internal/testregistry"
)

func newBundleImages(t *testing.T) *BundleImages {
	t.Helper()
	client, err := ociimage.NewClient(ociimage.WithCacheDir(t.TempDir()), ociimage.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return NewBundleImages(client, 10*time.Second, 1<<20, logr.Discard())
}

// TestBundleImagesIdentity: a bundle image must hold the bundle the
// catalog lists; once pulled, it is at hand without the registry.
func TestBundleImagesIdentity(t *testing.T) {
	f := testregistry.NewFaulty(t)
	dir, err := fs.Sub(bundles.FS, "lighthouse-operator/1.3.0")
	if err != nil {
		t.Fatal(err)
	}
	img, err := ociimage.BuildBundleImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := f.Addr + "/bundles/lighthouse-operator@" + ocitest.Push(t, f.Addr+"/bundles/lighthouse-operator:1.3.0", img)
	b := newBundleImages(t)
	ctx := context.Background()

	_, err = b.Pull(ctx, catalog.BundleImage{Package: "lighthouse-operator", Name: "lighthouse-operator.v1.2.0", Image: ref})
	if !errors.Is(err, ErrWrongBundle) || !strings.Contains(err.Error(), "holds [lighthouse-operator.v1.3.0 of package \"lighthouse-operator\"]") {
		t.Fatalf("another bundle's image: %v", err)
	}
	right := catalog.BundleImage{Package: "lighthouse-operator", Name: "lighthouse-operator.v1.3.0", Image: ref}
	ms, err := b.Pull(ctx, right)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no objects")
	}
	f.Stop()
	b.recent = nil // not from memory: from the unpacked image on disk
	b2 := NewBundleImages(b.client, time.Second, 1<<20, logr.Discard())
	cached, ok := b2.Cached(right)
	if !ok || catalog.ManifestsDigest(cached) != catalog.ManifestsDigest(ms) {
		t.Fatal("a pulled bundle image is not at hand without the registry")
	}
}

// TestBundleImagesFailureRemembered: a failed pull is answered again for a
// while without asking the registry, then tried again.
func TestBundleImagesFailureRemembered(t *testing.T) {
	b := newBundleImages(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.now = func() time.Time { return now }
	ref := catalog.BundleImage{Package: "p", Name: "p.v1", Image: testregistry.FreeAddr(t) + "/bundles/p:1"}
	ctx := context.Background()
	_, err := b.Pull(ctx, ref)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "the last pull failed") {
		t.Fatalf("first pull: %v", err)
	}
	_, err = b.Pull(ctx, ref)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "the next is tried after 2026-01-01T00:01:00Z") {
		t.Fatalf("second pull within a minute: %v, want the remembered failure", err)
	}
	now = now.Add(BundlePullRetryAfter)
	_, err = b.Pull(ctx, ref)
	if err == nil || strings.Contains(err.Error(), "the last pull failed") {
		t.Fatalf("pull after the retry time: %v, want a new attempt", err)
	}
}
