package catalogsource

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/internal/ociimage"
	"github.com/ferrydev/ferry/internal/ociimage/ocitest"
	"github.com/ferrydev/ferry/internal/roguecatalog"
	"github.com/ferrydev/ferry/internal/testregistry"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

const (
	lazyPackage = "lighthouse-operator"
	lazyBundle  = "lighthouse-operator.v1.3.0"
)

// lazyCatalog is a catalogd serving, in this process, a catalog that lists
// lazyBundle by image only, with catalogd's bundle images in their default
// (lazy) mode: the image is pulled when the bundle is asked for, and the
// catalog is loaded again once pulls settle, as cmd/catalogd does.
type lazyCatalog struct {
	srv *catalogServer
	// initial is the catalog served before any pull.
	initial *catalog.Catalog
	// image is the bundle image the catalog lists.
	image string
	// want is the manifests digest of the bundle's objects.
	want string
}

// startLazyCatalog serves lazyBundle by image only from a real registry;
// when pushed is false, the image listed was never pushed.
func startLazyCatalog(t *testing.T, pushed bool) *lazyCatalog {
	t.Helper()
	reg := testregistry.Start(t)
	dir, err := fs.Sub(bundles.FS, lazyPackage+"/1.3.0")
	if err != nil {
		t.Fatal(err)
	}
	full, err := catalog.Load(t.Context(), []catalog.Source{{Name: "bundle", FS: dir, Format: catalog.FormatBundle}})
	if err != nil || len(full.Problems) > 0 {
		t.Fatalf("bundle: %v %v", err, full.Problems)
	}
	lc := &lazyCatalog{want: full.Bundle(lazyPackage, lazyBundle).ManifestsDigest()}
	lc.image = reg + "/bundles/never-pushed@sha256:" + strings.Repeat("0", 64)
	if pushed {
		img, err := ociimage.BuildBundleImage(dir)
		if err != nil {
			t.Fatal(err)
		}
		lc.image = reg + "/bundles/" + lazyPackage + "@" + ocitest.Push(t, reg+"/bundles/"+lazyPackage+":1.3.0", img)
	}
	var rendered, imageOnly bytes.Buffer
	if err := catalog.Render(&rendered, full); err != nil {
		t.Fatal(err)
	}
	if err := ociimage.ImageOnlyCatalog(&imageOnly, &rendered, func(string, string) string { return lc.image }); err != nil {
		t.Fatal(err)
	}
	fbc := t.TempDir()
	if err := os.WriteFile(filepath.Join(fbc, "catalog.json"), imageOnly.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	client, err := ociimage.NewClient(ociimage.WithCacheDir(t.TempDir()), ociimage.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	images := catalogd.NewBundleImages(client, 10*time.Second, 1<<20, logr.Discard())
	load := func(ctx context.Context) (*catalog.Catalog, error) {
		return catalog.Load(ctx, []catalog.Source{catalog.DirSource(fbc)}, catalog.WithBundleImages(images, false))
	}
	lc.initial, err = load(t.Context())
	if err != nil || len(lc.initial.Problems) > 0 {
		t.Fatalf("image-only catalog: %v %v", err, lc.initial.Problems)
	}
	if got := lc.initial.Bundle(lazyPackage, lazyBundle).ManifestsDigest(); got != "" {
		t.Fatalf("a bundle not pulled yet announces manifests digest %q", got)
	}
	lc.srv = startCatalogd(t, lc.initial)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		images.Run(ctx, 50*time.Millisecond, func(ctx context.Context) error {
			c, err := load(ctx)
			if err != nil {
				return err
			}
			lc.srv.holder.Swap(c)
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return lc
}

// announced is the manifests digest the held snapshot announces for lazyBundle.
func announced(s *Store, name string) string {
	snap, ok := s.Get(name)
	if !ok {
		return ""
	}
	b := snap.Catalog.Bundle(lazyPackage, lazyBundle)
	if b == nil {
		return ""
	}
	return b.ManifestsDigest()
}

// TestLazyImageOnlyBundle: a bundle listed by image only, not pulled yet,
// is asked for (which makes catalogd pull its image), is pending until a
// snapshot announces its manifests digest, and then is served verified.
func TestLazyImageOnlyBundle(t *testing.T) {
	lc := startLazyCatalog(t, true)
	s := NewStore(WithManifestCacheBytes(0))
	follow(t, s, "lazy", lc.srv.addr)
	if got := announced(s, "lazy"); got != "" {
		t.Fatalf("the snapshot announces %q before the pull", got)
	}
	ctx := context.Background()
	_, err := s.Manifests(ctx, "lazy", lazyPackage, lazyBundle)
	var pending *BundlePendingError
	if !errors.As(err, &pending) {
		t.Fatalf("Manifests before the digest is announced = %v, want *BundlePendingError", err)
	}
	want := `catalog "lazy" at ` + lc.srv.addr + `: bundle ` + lazyBundle + ` of package "` + lazyPackage + `" is listed by image only: catalogd pulled its image ` +
		lc.image + ` (manifests digest ` + lc.want + `); waiting for the catalog to announce that digest in a new snapshot`
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return announced(s, "lazy") == lc.want, nil
	}); err != nil {
		t.Fatalf("the snapshot never announced the pulled bundle's digest %s (announces %q)", lc.want, announced(s, "lazy"))
	}
	ms, err := s.Manifests(ctx, "lazy", lazyPackage, lazyBundle)
	if err != nil {
		t.Fatal(err)
	}
	if got := catalog.ManifestsDigest(ms); got != lc.want {
		t.Errorf("manifests hash to %s, want %s", got, lc.want)
	}
}

// TestLazyBundleImagePullFails: a bundle image catalogd cannot pull is
// pending with catalogd's error naming the image, and the catalog's event
// is sent again after the retry delay.
func TestLazyBundleImagePullFails(t *testing.T) {
	lc := startLazyCatalog(t, false)
	s := NewStore(WithPendingRetry(200 * time.Millisecond))
	follow(t, s, "lazy", lc.srv.addr)
	drain(s)
	ctx := context.Background()
	for i, remembered := range []bool{false, true} {
		_, err := s.Manifests(ctx, "lazy", lazyPackage, lazyBundle)
		var pending *BundlePendingError
		if !errors.As(err, &pending) || pending.Err == nil {
			t.Fatalf("call %d: Manifests = %v, want *BundlePendingError with catalogd's error", i+1, err)
		}
		msg := err.Error()
		head := `catalog "lazy" at ` + lc.srv.addr + `: bundle ` + lazyBundle + ` of package "` + lazyPackage + `" is listed by image only, and catalogd has not pulled its image ` + lc.image + `: `
		if !strings.HasPrefix(msg, head) || !strings.Contains(msg, "not found in the registry") || !strings.HasSuffix(msg, "; asked again in 200ms") {
			t.Errorf("call %d: error = %q", i+1, msg)
		}
		if got := strings.Contains(msg, "the last pull failed"); got != remembered {
			t.Errorf("call %d: catalogd answered from its memory of the failure: %v, want %v (%s)", i+1, got, remembered, msg)
		}
	}
	select {
	case ev := <-s.Events():
		if ev.Object.GetName() != "lazy" {
			t.Fatalf("event for %q, want lazy", ev.Object.GetName())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no event for the catalog after the retry delay")
	}
}

// drain reads the events sent so far.
func drain(s *Store) {
	for {
		select {
		case <-s.Events():
		default:
			return
		}
	}
}

// TestLazyBundleAnswersMustMatch: an answer for a bundle whose digest is
// not announced yet is never installed; one that does not hash to the
// digest it names, names another image, or names no digest at all (a
// catalogd that announces none) is refused.
func TestLazyBundleAnswersMustMatch(t *testing.T) {
	clusterAdmin := &catalogv1.Manifest{ApiVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding", Name: "cluster-admin",
		Json: `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"cluster-admin"}}`}
	tests := []struct {
		name   string
		answer func(b *catalogv1.Bundle)
		// want is the mismatch reason ({received}: the digest the answer's
		// manifests hash to); "" when the bundle stays pending.
		want string
	}{
		{
			name:   "manifests other than the answer names",
			answer: func(b *catalogv1.Bundle) { b.Manifests = append(b.Manifests, clusterAdmin) },
			want:   "the manifests received hash to {received}, the answer names {want}",
		},
		{
			name:   "another image",
			answer: func(b *catalogv1.Bundle) { b.Image = "registry.invalid/other@sha256:" + strings.Repeat("1", 64) },
			want:   "the answer names bundle image registry.invalid/other@sha256:" + strings.Repeat("1", 64) + ", the snapshot {image}",
		},
		{
			name:   "no manifests digest, as a catalogd older than manifests digests",
			answer: func(b *catalogv1.Bundle) { b.ManifestsDigest = "" },
			want:   reasonNoManifestsDigest,
		},
		{
			name: "a digest of its own, never announced",
			answer: func(b *catalogv1.Bundle) {
				b.Manifests = append(b.Manifests, clusterAdmin)
				b.ManifestsDigest = catalog.ManifestsDigest(toManifests(b.Manifests))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := startLazyCatalog(t, true)
			var received string
			addr := roguecatalog.Start(t, lc.srv.addr, lc.initial, roguecatalog.Edits{Answer: func(_ int, b *catalogv1.Bundle) {
				tt.answer(b)
				received = catalog.ManifestsDigest(toManifests(b.Manifests))
			}})
			s := NewStore(WithManifestCacheBytes(0))
			follow(t, s, "rogue", addr)
			ms, err := s.Manifests(context.Background(), "rogue", lazyPackage, lazyBundle)
			if ms != nil {
				t.Fatalf("Manifests returned %d manifests, want none", len(ms))
			}
			if tt.want == "" {
				var pending *BundlePendingError
				if !errors.As(err, &pending) || pending.ManifestsDigest != received {
					t.Fatalf("Manifests = %v, want *BundlePendingError naming %s", err, received)
				}
				return
			}
			var mismatch *ContentMismatchError
			if !errors.As(err, &mismatch) {
				t.Fatalf("Manifests = %v, want *ContentMismatchError", err)
			}
			reason := strings.NewReplacer("{received}", received, "{want}", lc.want, "{image}", lc.image).Replace(tt.want)
			want := `catalog "rogue" at ` + addr + `: bundle ` + lazyBundle + ` of package "` + lazyPackage + `": ` + reason + "; the answer is refused"
			if err.Error() != want {
				t.Errorf("error = %q\nwant    %q", err, want)
			}
		})
	}
}
