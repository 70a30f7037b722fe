package main

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogsource"
	"github.com/ferrydev/ferry/internal/ociimage/ocitest"
	"github.com/ferrydev/ferry/internal/testregistry"
	"github.com/ferrydev/ferry/proto/api"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// imageOnlySample pushes the sample catalog's bundles as bundle images and
// a catalog image listing them by image only (missing: never pushed); it
// returns the catalog image and each bundle's manifests digest.
func imageOnlySample(t *testing.T, addr string, missing ...string) (string, map[string]string) {
	t.Helper()
	img, want := ocitest.ImageOnly(t, addr, bundles.FS, missing...)
	ref := addr + "/ferry/image-only:v1"
	ocitest.Push(t, ref, img)
	return "oci://" + ref, want
}

// announced is the manifests digest catalogd announces for each bundle of
// the package.
func (s *served) announced(t *testing.T, pkg string) map[string]string {
	t.Helper()
	stream, err := catalogv1.NewCatalogServiceClient(s.conn).ListBundles(t.Context(), &catalogv1.ListBundlesRequest{Package: pkg})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for {
		b, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[b.GetName()] = b.GetManifestsDigest()
	}
}

// TestServeImageOnlyBundles: a catalog image whose bundles are listed by
// image only is served with each bundle's objects pulled from its bundle
// image, on the first request (lazy) or while loading (eager); a bundle
// image that cannot be pulled fails that bundle only, with Unavailable.
func TestServeImageOnlyBundles(t *testing.T) {
	bin := buildCatalogd(t)
	addr := testregistry.Start(t)
	const broken = "lighthouse-operator.v1.1.1"
	catalogRef, want := imageOnlySample(t, addr, broken)
	cs := func(s *served) catalogv1.CatalogServiceClient { return catalogv1.NewCatalogServiceClient(s.conn) }

	t.Run("lazy", func(t *testing.T) {
		s := startCatalogd(t, bin, "--catalog", catalogRef, "--image-cache-dir", t.TempDir(), "--poll-interval", "0")
		if got := s.announced(t, "lighthouse-operator")["lighthouse-operator.v1.3.0"]; got != "" {
			t.Fatalf("a bundle not pulled yet announces manifests digest %q", got)
		}
		b, err := cs(s).GetBundle(t.Context(), &catalogv1.GetBundleRequest{Package: "lighthouse-operator", Version: "1.3.0"})
		if err != nil {
			t.Fatal(err)
		}
		if got := catalog.ManifestsDigest(catalogsource.ManifestsOf(b)); got != want[b.GetName()] {
			t.Fatalf("bundle %s served manifests hashing to %s, want %s as inline", b.GetName(), got, want[b.GetName()])
		}
		// The answer names the digest computed from the image just pulled,
		// before any snapshot announces it.
		if got := b.GetManifestsDigest(); got != want[b.GetName()] {
			t.Fatalf("bundle %s pulled on request: the answer names manifests digest %q, want %s", b.GetName(), got, want[b.GetName()])
		}
		waitUntil(t, "the pulled bundle's manifests digest to be announced", func() bool {
			return s.announced(t, "lighthouse-operator")["lighthouse-operator.v1.3.0"] == want["lighthouse-operator.v1.3.0"]
		})
		_, err = cs(s).GetBundle(t.Context(), &catalogv1.GetBundleRequest{Package: "lighthouse-operator", Name: broken})
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "never-pushed@sha256:") || !strings.Contains(err.Error(), "not found in the registry") {
			t.Fatalf("bundle with an image not in the registry: %v, want Unavailable naming the image", err)
		}
		// operator-registry's API pulls the same way.
		rb, err := api.NewRegistryClient(s.conn).GetBundle(t.Context(), &api.GetBundleRequest{PkgName: "signal-store", ChannelName: "stable-v2", CsvName: "signal-store.v2.0.0"})
		if err != nil {
			t.Fatalf("api.Registry GetBundle of another bundle after a failed one: %v", err)
		}
		var objects []catalog.Manifest
		for _, o := range rb.GetObject() {
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal([]byte(o), &head); err != nil {
				t.Fatal(err)
			}
			objects = append(objects, catalog.Manifest{APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, JSON: json.RawMessage(o)})
		}
		if got := catalog.ManifestsDigest(objects); got != want["signal-store.v2.0.0"] || rb.GetCsvJson() == "" {
			t.Fatalf("api.Registry GetBundle: objects hash to %s, want %s", got, want["signal-store.v2.0.0"])
		}
	})

	t.Run("eager", func(t *testing.T) {
		s := startCatalogd(t, bin, "--catalog", catalogRef, "--image-cache-dir", t.TempDir(), "--poll-interval", "0", "--bundle-images", "eager")
		for _, pkg := range []string{"lighthouse-operator", "signal-store", "beacon-metrics"} {
			for name, got := range s.announced(t, pkg) {
				if name == broken {
					if got != "" {
						t.Errorf("%s: announced %q for a bundle whose image could not be pulled", name, got)
					}
					continue
				}
				if got != want[name] {
					t.Errorf("%s: announced %s, want %s", name, got, want[name])
				}
			}
		}
		var warned bool
		for _, p := range s.info(t).GetProblems() {
			if p.GetBundle() == broken && p.GetSeverity() == "warning" && strings.Contains(p.GetReason(), "pulling bundle image") {
				warned = true
			}
		}
		if !warned {
			t.Fatalf("no warning for %s in %v", broken, s.info(t).GetProblems())
		}
	})
}
