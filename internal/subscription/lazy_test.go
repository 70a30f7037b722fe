package subscription_test

import (
	"bytes"
	"context"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/internal/ociimage"
	"github.com/ferrydev/ferry/internal/ociimage/ocitest"
	"github.com/ferrydev/ferry/internal/testregistry"
)

// startLazyCatalogd serves the sample catalog with every bundle listed by
// image only, pushed to a real registry process (missing: listed under an
// image never pushed), with catalogd's bundle images in their default
// (lazy) mode: an image is pulled when its bundle is asked for, and the
// catalog is loaded again once pulls settle, as cmd/catalogd does. It
// returns the server and the image each bundle is listed with.
func startLazyCatalogd(t *testing.T, missing ...string) (*server, map[string]string) {
	t.Helper()
	reg := testregistry.Start(t)
	tree, err := catalog.Load(context.Background(), []catalog.Source{{Name: "tree", FS: bundles.FS}})
	if err != nil || len(tree.Problems) > 0 {
		t.Fatalf("sample bundles: %v %v", err, tree.Problems)
	}
	images := map[string]string{}
	for _, p := range tree.Packages {
		for _, b := range p.Bundles {
			if contains(missing, b.Name) {
				images[b.Name] = reg + "/bundles/never-pushed@sha256:" + strings.Repeat("0", 64)
				continue
			}
			dir, err := fs.Sub(bundles.FS, path.Clean(strings.TrimPrefix(b.Source, "tree/")))
			if err != nil {
				t.Fatal(err)
			}
			img, err := ociimage.BuildBundleImage(dir)
			if err != nil {
				t.Fatal(err)
			}
			images[b.Name] = reg + "/bundles/" + p.Name + "@" + ocitest.Push(t, reg+"/bundles/"+p.Name+":"+b.Version.String(), img)
		}
	}
	var rendered, imageOnly bytes.Buffer
	if err := catalog.Render(&rendered, tree); err != nil {
		t.Fatal(err)
	}
	if err := ociimage.ImageOnlyCatalog(&imageOnly, &rendered, func(_, bundle string) string { return images[bundle] }); err != nil {
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
	bi := catalogd.NewBundleImages(client, 10*time.Second, 8<<20, logr.Discard())
	load := func(ctx context.Context) (*catalog.Catalog, error) {
		return catalog.Load(ctx, []catalog.Source{catalog.DirSource(fbc)}, catalog.WithBundleImages(bi, false))
	}
	c, err := load(context.Background())
	if err != nil || len(c.Problems.Errors()) > 0 {
		t.Fatalf("image-only catalog: %v %v", err, c.Problems)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: lis.Addr().String(), dir: fbc, holder: catalogd.NewHolder(c), lis: lis}
	s.srv = catalogd.NewServer(s.holder)
	go func() { _ = s.srv.Serve(lis) }()
	t.Cleanup(s.stop)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		bi.Run(ctx, 50*time.Millisecond, func(ctx context.Context) error {
			c, err := load(ctx)
			if err != nil {
				return err
			}
			s.holder.Swap(c)
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return s, images
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestLazyImageOnlyBundleInstalls: from a catalogd in its default lazy
// mode, a bundle listed by image only, whose manifests digest the catalog
// announces only after the pull the installer's request starts, installs.
func TestLazyImageOnlyBundleInstalls(t *testing.T) {
	freshCRDs(t, "beacons.lighthouse.ferry.dev", "signalstores.signals.ferry.dev")
	srv, _ := startLazyCatalogd(t)
	if got := srv.holder.Catalog().Bundle("signal-store", "signal-store.v1.1.0").ManifestsDigest(); got != "" {
		t.Fatalf("the bundle announces manifests digest %q before any pull", got)
	}
	ns := namespace(t)
	c := startManager(t, ns)
	markHealthy(t, ns, nil)
	cat := catalogSource(t, c, srv.addr)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", StartingVersion: "1.1.0"})
	sub := waitSub(t, c, ns, "signals", "installed at 1.1.0", func(s *v1alpha1.Subscription) bool {
		return s.Status.InstalledVersion == "1.1.0"
	})
	if sub.Status.State != v1alpha1.StateInstalled && sub.Status.State != v1alpha1.StateUpgradePending {
		t.Errorf("state %s, want Installed", sub.Status.State)
	}
	if got := srv.holder.Catalog().Bundle("signal-store", "signal-store.v1.1.0").ManifestsDigest(); got == "" {
		t.Error("the catalog installed from announces no manifests digest for the bundle")
	}
}

// TestLazyBundleImagePullFailureIsNamed: a bundle image catalogd cannot
// pull leaves the Subscription waiting, with the image and catalogd's
// error in its status, and nothing installed.
func TestLazyBundleImagePullFailureIsNamed(t *testing.T) {
	const bundle = "signal-store.v1.1.0"
	freshCRDs(t, "beacons.lighthouse.ferry.dev", "signalstores.signals.ferry.dev")
	srv, images := startLazyCatalogd(t, bundle)
	ns := namespace(t)
	c := startManager(t, ns)
	cat := catalogSource(t, c, srv.addr)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", StartingVersion: "1.1.0"})
	want := `catalog "` + cat + `" at ` + srv.addr + `: bundle ` + bundle + ` of package "signal-store" is listed by image only, and catalogd has not pulled its image ` + images[bundle] + `: `
	sub := waitSub(t, c, ns, "signals", "waiting for the bundle image", func(s *v1alpha1.Subscription) bool {
		cond := condition(s, v1alpha1.TypeProgressing)
		return cond != nil && strings.Contains(cond.Message, want)
	})
	cond := condition(sub, v1alpha1.TypeProgressing)
	if cond.Reason != v1alpha1.ReasonCatalogUnavailable || !strings.Contains(cond.Message, "not found in the registry") {
		t.Errorf("Progressing = %s: %s; want %s naming catalogd's error", cond.Reason, cond.Message, v1alpha1.ReasonCatalogUnavailable)
	}
	if strings.Contains(cond.Message, "announced no manifests digest") {
		t.Errorf("Progressing message says the catalog announces no digests: %s", cond.Message)
	}
	if sub.Status.InstalledVersion != "" || sub.Status.CurrentRevision != 0 {
		t.Errorf("installed %q, revision %d; want nothing", sub.Status.InstalledVersion, sub.Status.CurrentRevision)
	}
}
