package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/ociimage"
	"github.com/ferrydev/ferry/internal/ociimage/ocitest"
	"github.com/ferrydev/ferry/internal/testregistry"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// sampleCatalogImages are two catalog images of the sample catalog: without
// the signal-store package, and whole.
func sampleCatalogImages(t *testing.T) (older, newer v1.Image) {
	t.Helper()
	return catalogImage(t, ocitest.Without(t, bundles.FS, "signal-store")), catalogImage(t, bundles.FS)
}

// catalogImage renders the catalog in fsys as FBC into a catalog image.
func catalogImage(t *testing.T, fsys fs.FS) v1.Image {
	t.Helper()
	c, err := catalog.Load(context.Background(), []catalog.Source{{Name: "bundles", FS: fsys}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Problems) > 0 {
		t.Fatalf("sample catalog: %v", c.Problems)
	}
	var fbc bytes.Buffer
	if err := catalog.Render(&fbc, c); err != nil {
		t.Fatal(err)
	}
	img, err := ociimage.BuildCatalogImage(fstest.MapFS{"catalog.json": {Data: fbc.Bytes()}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func pushImage(t *testing.T, ref string, img v1.Image) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func (s *served) info(t *testing.T) *catalogv1.CatalogInfo {
	t.Helper()
	info, err := catalogv1.NewCatalogServiceClient(s.conn).GetCatalogInfo(context.Background(), &catalogv1.GetCatalogInfoRequest{IncludeProblems: true})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func (s *served) hup(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// TestServeCatalogImage: catalogd serves a catalog image from a registry
// running as its own process; pushing a newer image to the tag and SIGHUP
// swap it in and Watch announces it.
func TestServeCatalogImage(t *testing.T) {
	bin := buildCatalogd(t)
	addr := testregistry.Start(t)
	older, newer := sampleCatalogImages(t)
	ref := addr + "/ferry/catalog:stable"
	d1 := pushImage(t, ref, older)
	s := startCatalogd(t, bin, "--catalog", "oci://"+ref, "--image-cache-dir", t.TempDir(), "--poll-interval", "0")

	info := s.info(t)
	if info.GetPackageCount() != 2 || len(info.GetSources()) != 1 || info.GetSources()[0] != addr+"/ferry/catalog@"+d1 {
		t.Fatalf("serving %d packages from %v, want 2 from %s@%s", info.GetPackageCount(), info.GetSources(), ref, d1)
	}
	watch, err := catalogv1.NewCatalogServiceClient(s.conn).Watch(t.Context(), &catalogv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	d2 := pushImage(t, ref, newer)
	s.hup(t)
	next, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if next.GetInfo().GetDigest() == first.GetInfo().GetDigest() || next.GetInfo().GetPackageCount() != 3 {
		t.Fatalf("after the push Watch announced %d packages at %s, want 3 at a new digest", next.GetInfo().GetPackageCount(), next.GetInfo().GetDigest())
	}
	if got := next.GetInfo().GetSources(); len(got) != 1 || got[0] != addr+"/ferry/catalog@"+d2 {
		t.Fatalf("sources %v, want the new image %s", got, d2)
	}
	if v := s.metric(t, `ferry_catalogd_image_pulls_total{kind="catalog",result="pulled"}`); v != 2 {
		t.Fatalf("%v catalog pulls, want 2", v)
	}
}

// TestCatalogImageFailuresKeepTheLastGood: a pull that fails — corrupt
// blob, missing manifest, credentials refused, registry down — keeps the
// catalog served, and GetCatalogInfo and the metrics say why; once the
// registry answers again, the new image is served.
func TestCatalogImageFailuresKeepTheLastGood(t *testing.T) {
	bin := buildCatalogd(t)
	older, newer := sampleCatalogImages(t)
	for _, tc := range []struct {
		name string
		// breakIt pushes the newer image, or a bad one, to ref and
		// breaks the registry; mend, when set, makes the newer image
		// pullable again.
		breakIt func(f *testregistry.Faulty, ref string)
		mend    func(f *testregistry.Faulty, ref string)
		reason  string
		// loads is set when the pull works and the load fails.
		loads bool
	}{
		{
			name:    "corrupted blob",
			breakIt: func(f *testregistry.Faulty, ref string) { pushImage(t, ref, newer); f.CorruptBlobs(true) },
			mend:    func(f *testregistry.Faulty, _ string) { f.CorruptBlobs(false) }, reason: "content does not match its digest",
		},
		{
			name:    "missing manifest",
			breakIt: func(f *testregistry.Faulty, ref string) { pushImage(t, ref, newer); f.HideManifests(true) },
			mend:    func(f *testregistry.Faulty, _ string) { f.HideManifests(false) }, reason: "MANIFEST_UNKNOWN",
		},
		{
			name:    "401 without credentials",
			breakIt: func(f *testregistry.Faulty, ref string) { pushImage(t, ref, newer); f.RequireAuth("ci", "s3cret") },
			mend:    func(f *testregistry.Faulty, _ string) { f.RequireAuth("", "") }, reason: "the registry refused access",
		},
		{
			name:    "wrong media type",
			breakIt: func(_ *testregistry.Faulty, ref string) { pushImage(t, ref, ocitest.HelmChart(t)) },
			mend:    func(_ *testregistry.Faulty, ref string) { pushImage(t, ref, newer) }, reason: "unsupported media type",
		},
		{
			name: "a catalog that does not load",
			breakIt: func(_ *testregistry.Faulty, ref string) {
				img, err := ociimage.BuildCatalogImage(fstest.MapFS{"catalog.json": {Data: []byte(`{"schema":"olm.package","name":"no-channels"}`)}})
				if err != nil {
					t.Fatal(err)
				}
				pushImage(t, ref, img)
			},
			mend:   func(_ *testregistry.Faulty, ref string) { pushImage(t, ref, newer) },
			reason: "did not load: the reloaded catalog has no servable package",
			loads:  true,
		},
		{
			name:    "registry down",
			breakIt: func(f *testregistry.Faulty, ref string) { pushImage(t, ref, newer); f.Stop() },
			reason:  "connection refused",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := testregistry.NewFaulty(t)
			ref := f.Addr + "/ferry/catalog:stable"
			d1 := pushImage(t, ref, older)
			s := startCatalogd(t, bin, "--catalog", "oci://"+ref, "--image-cache-dir", t.TempDir(), "--poll-interval", "0")
			before := s.info(t)
			tc.breakIt(f, ref)
			s.hup(t)
			waitUntil(t, "the failed check to be reported", func() bool {
				return s.metric(t, "ferry_catalogd_catalog_images_stale") == 1
			})
			pullFailures := s.metric(t, `ferry_catalogd_image_pulls_total{kind="catalog",result="failure"}`)
			if want := map[bool]float64{true: 0, false: 1}[tc.loads]; pullFailures != want {
				t.Fatalf("%v failed pulls counted, want %v", pullFailures, want)
			}
			info := s.info(t)
			if info.GetDigest() != before.GetDigest() || info.GetPackageCount() != 2 {
				t.Fatalf("after a failed pull serving %s (%d packages), want the last good %s", info.GetDigest(), info.GetPackageCount(), before.GetDigest())
			}
			var found bool
			for _, p := range info.GetProblems() {
				if p.GetPath() == "oci://"+ref && p.GetField() == "image" && strings.Contains(p.GetReason(), tc.reason) && strings.Contains(p.GetReason(), "still serving "+d1) {
					found = true
				}
			}
			if !found {
				t.Fatalf("GetCatalogInfo problems %v do not say %q and that %s is still served", info.GetProblems(), tc.reason, d1)
			}
			if tc.mend == nil {
				return
			}
			tc.mend(f, ref)
			s.hup(t)
			// The check swaps the new catalog in, then clears the image's
			// problem: wait for both. GetCatalogInfo never shows the new
			// catalog with the old problem meanwhile.
			waitUntil(t, "the new image to be served and no longer stale", func() bool {
				info := s.info(t)
				if info.GetPackageCount() == 3 && len(info.GetProblems()) != 0 {
					t.Fatalf("GetCatalogInfo shows the new catalog (sources %v) with the old problems %v", info.GetSources(), info.GetProblems())
				}
				return info.GetPackageCount() == 3 && s.metric(t, "ferry_catalogd_catalog_images_stale") == 0
			})
			info = s.info(t)
			d2, err := newer.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if len(info.GetProblems()) != 0 || info.GetSources()[0] != f.Addr+"/ferry/catalog@"+d2.String() {
				t.Fatalf("after the registry mended: problems %v, sources %v", info.GetProblems(), info.GetSources())
			}
		})
	}

	t.Run("tag moved mid-pull", func(t *testing.T) {
		f := testregistry.NewFaulty(t)
		ref := f.Addr + "/ferry/catalog:stable"
		pushImage(t, ref, older)
		s := startCatalogd(t, bin, "--catalog", "oci://"+ref, "--image-cache-dir", t.TempDir(), "--poll-interval", "0")
		third := catalogImage(t, ocitest.Without(t, bundles.FS, "beacon-metrics"))
		d2 := pushImage(t, ref, newer)
		d3, err := third.Digest()
		if err != nil {
			t.Fatal(err)
		}
		f.OnFirstBlob(func() { pushImage(t, ref, third) })
		s.hup(t)
		// The digest resolved before the move is served whole.
		waitUntil(t, "the image resolved first to be served", func() bool { return s.info(t).GetPackageCount() == 3 })
		if got := s.info(t).GetSources()[0]; got != f.Addr+"/ferry/catalog@"+d2 {
			t.Fatalf("serving %s, want %s", got, d2)
		}
		s.hup(t)
		waitUntil(t, "the image the tag moved to to be served", func() bool {
			return s.info(t).GetSources()[0] == f.Addr+"/ferry/catalog@"+d3.String()
		})
	})

	t.Run("registry down at start serves the digest last pulled", func(t *testing.T) {
		f := testregistry.NewFaulty(t)
		ref := f.Addr + "/ferry/catalog:stable"
		d1 := pushImage(t, ref, older)
		cache := t.TempDir()
		s := startCatalogd(t, bin, "--catalog", "oci://"+ref, "--image-cache-dir", cache, "--poll-interval", "0")
		want := s.info(t).GetDigest()
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		f.Stop()
		s2 := startCatalogd(t, bin, "--catalog", "oci://"+ref, "--image-cache-dir", cache, "--poll-interval", "0")
		info := s2.info(t)
		if info.GetDigest() != want || len(info.GetProblems()) != 1 || !strings.Contains(info.GetProblems()[0].GetReason(), "serving "+d1+", the digest last pulled") {
			t.Fatalf("serving %s with problems %v, want %s and the reason", info.GetDigest(), info.GetProblems(), want)
		}
	})

	t.Run("registry down at start without a cache fails", func(t *testing.T) {
		ref := testregistry.FreeAddr(t) + "/ferry/catalog:stable"
		out, err := runCatalogd(t, bin, "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "", "--catalog", "oci://"+ref, "--image-cache-dir", t.TempDir())
		if err == nil || !strings.Contains(out, "pulling oci://"+ref+": resolve") || !strings.Contains(out, "connection refused") {
			t.Fatalf("catalogd: %v\n%s", err, out)
		}
	})
}

func runCatalogd(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestServeCommunityCatalogImage: the real community catalog, pushed as a
// catalog image to a registry process, is served in full.
func TestServeCommunityCatalogImage(t *testing.T) {
	archive := corpusArchive(t, "community-prod-full-fbc.tar.xz")
	bin := buildCatalogd(t)
	addr := testregistry.Start(t)
	dir := t.TempDir()
	if out, err := exec.CommandContext(t.Context(), "tar", "-xJf", archive, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("extracting %s: %v\n%s", archive, err, out)
	}
	root := catalogRootOf(t, dir)
	want, err := catalog.Load(t.Context(), []catalog.Source{catalog.DirSource(root)})
	if err != nil {
		t.Fatal(err)
	}
	img, err := ociimage.BuildCatalogImage(os.DirFS(root))
	if err != nil {
		t.Fatal(err)
	}
	ref := addr + "/community/catalog:prod"
	pushImage(t, ref, img)
	// Most of its bundles are listed by image only (in quay.io): served
	// without objects here, as when loaded from the directory.
	s := startCatalogdWith(t, bin, "1GiB", "--catalog", "oci://"+ref, "--image-cache-dir", t.TempDir(), "--bundle-images=off")
	info := s.info(t)
	n := want.Counts()
	if info.GetDigest() != want.Digest || info.GetPackageCount() != 325 || int(info.GetBundleCount()) != n.Bundles {
		t.Fatalf("serving %d packages and %d bundles at %s, want 325 and %d at %s, as from the directory",
			info.GetPackageCount(), info.GetBundleCount(), info.GetDigest(), n.Bundles, want.Digest)
	}
	cs := catalogv1.NewCatalogServiceClient(s.conn)
	p, err := cs.GetPackage(t.Context(), &catalogv1.GetPackageRequest{Name: "etcd"})
	if err != nil {
		t.Fatal(err)
	}
	var head string
	for _, ch := range p.GetChannels() {
		if ch.GetName() == p.GetDefaultChannel() {
			head = ch.GetHead()
		}
	}
	b, err := cs.GetBundle(t.Context(), &catalogv1.GetBundleRequest{Package: "etcd", Name: head})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.GetManifests()) == 0 {
		t.Fatalf("bundle %s of etcd has no manifests", head)
	}
}

// corpusArchive is a file of the shared corpus next to the module; the test
// is skipped when the corpus is not there.
func corpusArchive(t *testing.T, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("loads the real community catalog")
	}
	p, err := filepath.Abs(filepath.Join("..", "..", "..", "shared", "corpus", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s is absent (the shared corpus of real catalogs is not next to this clone): %v", p, err)
	}
	return p
}

// catalogRootOf descends into the lone directory an archive unpacked to.
func catalogRootOf(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) == 1 && ents[0].IsDir() {
		return filepath.Join(dir, ents[0].Name())
	}
	return dir
}

// TestValidateAndRenderImage: validate and render read a catalog image as
// serve does.
func TestValidateAndRenderImage(t *testing.T) {
	addr := testregistry.Start(t)
	_, newer := sampleCatalogImages(t)
	ref := addr + "/ferry/catalog:stable"
	digest := pushImage(t, ref, newer)
	cache := t.TempDir()

	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "--image-cache-dir", cache, "oci://" + ref}, &stdout, &stderr); code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if want := addr + "/ferry/catalog@" + digest + ": 3 packages, 5 channels, 11 bundles served; 0 errors, 0 warnings\n"; stdout.String() != want {
		t.Fatalf("validate printed %q, want %q", stdout.String(), want)
	}

	stdout.Reset()
	if code := run([]string{"render", "--image-cache-dir", cache, "oci://" + ref}, &stdout, &stderr); code != 0 {
		t.Fatalf("render: exit %d\n%s", code, stderr.String())
	}
	c, err := catalog.Load(context.Background(), []catalog.Source{{Name: "bundles", FS: bundles.FS}})
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := catalog.Render(&want, c); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != want.String() {
		t.Fatal("render of the catalog image differs from the render of the catalog it was built from")
	}

	f := testregistry.NewFaulty(t)
	f.RequireAuth("ci", "s3cret")
	stderr.Reset()
	code := run([]string{"validate", "--image-cache-dir", cache, "oci://" + f.Addr + "/ferry/catalog:stable"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "the registry refused access") {
		t.Fatalf("validate of a registry asking for credentials: exit %d, %s", code, stderr.String())
	}
}
