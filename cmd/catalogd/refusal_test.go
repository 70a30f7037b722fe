package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferrydev/ferry/internal/publish"
	"github.com/ferrydev/ferry/internal/publish/publishtest"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// ownedSignalStoreCSV is a lighthouse-operator 1.5.0 CSV that declares it
// owns the SignalStore CRD, which the sample catalog's signal-store provides.
const ownedSignalStoreCSV = `apiVersion: operators.coreos.com/v1alpha1
kind: ClusterServiceVersion
metadata:
  name: lighthouse-operator.v1.5.0
spec:
  version: 1.5.0
  replaces: lighthouse-operator.v1.4.0
  customresourcedefinitions:
    owned:
    - name: signalstores.signals.ferry.dev
      version: v1
      kind: SignalStore
`

// TestPublishRefusalsOutOfProcess: the catalogd binary, under GOMEMLIMIT,
// refuses a scoped token's bundle that claims another package's API, and
// an archive with a hidden 16 GiB entry; the catalog stays as it was and
// is still served.
func TestPublishRefusalsOutOfProcess(t *testing.T) {
	bin := buildCatalogd(t)
	const scopedToken = "scoped-token-0123456789"
	tokens := writeTokens(t, scopedToken+" lighthouse-operator\n"+testToken+"\n")
	s := startCatalogd(t, bin, "--data-dir", t.TempDir(), "--token-file", tokens)

	packDir := func(t *testing.T, dir string) []byte {
		t.Helper()
		files, err := publish.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		archive, err := publish.Pack(files)
		if err != nil {
			t.Fatal(err)
		}
		return archive
	}
	claiming := func(t *testing.T, file, content string) []byte {
		t.Helper()
		dir := writeTestBundle(t, t.TempDir(), "lighthouse-operator", "1.5.0", "fast", "lighthouse-operator.v1.4.0", nil, nil)
		writeFile(t, filepath.Join(dir, file), content)
		return packDir(t, dir)
	}
	const claim = `bundle lighthouse-operator.v1.5.0 of package "lighthouse-operator" claims API signals.ferry.dev/v1, Kind=SignalStore, which package "signal-store" provides (bundle signal-store.v2.0.0); the token does not cover package "signal-store"`
	tests := []struct {
		name    string
		archive func(t *testing.T) []byte
		token   string
		code    codes.Code
		want    string
	}{
		{"olm.gvk property, scoped token", func(t *testing.T) []byte {
			return claiming(t, "metadata/properties.yaml",
				"properties:\n- type: olm.gvk\n  value: {group: signals.ferry.dev, version: v1, kind: SignalStore}\n")
		}, scopedToken, codes.PermissionDenied, claim},
		{"owned CRD, scoped token", func(t *testing.T) []byte {
			return claiming(t, "manifests/lighthouse-operator.clusterserviceversion.yaml", ownedSignalStoreCSV)
		}, scopedToken, codes.PermissionDenied, claim},
		{"hidden 16 GiB entry", func(t *testing.T) []byte {
			return publishtest.ZeroEntryTarGz(t, "bundle/manifests/.git/objects/pack", 16<<30)
		}, testToken, codes.ResourceExhausted,
			`archive entry "bundle/manifests/.git/objects/pack" declares 17179869184 bytes: the entries would total more than 67108864 bytes`},
		// The same claim with a token for every package goes through: the
		// refusals above are the scope's, not the bundle's.
		{"olm.gvk property, token for every package", func(t *testing.T) []byte {
			return claiming(t, "metadata/properties.yaml",
				"properties:\n- type: olm.gvk\n  value: {group: signals.ferry.dev, version: v1, kind: SignalStore}\n")
		}, testToken, codes.OK, ""},
	}
	client := catalogv1.NewCatalogServiceClient(s.conn)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			archive := tc.archive(t)
			digest := s.catalogDigest(t)
			ctx, cancel := context.WithTimeout(publish.WithToken(context.Background(), tc.token), time.Minute)
			defer cancel()
			start := time.Now()
			_, err := publish.Upload(ctx, client, archive, &catalogv1.PublishHeader{}, nil)
			if tc.code == codes.OK {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := client.GetBundle(context.Background(), &catalogv1.GetBundleRequest{Package: "lighthouse-operator", Version: "1.5.0"}); err != nil {
					t.Fatalf("the published bundle: %v", err)
				}
				return
			}
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Fatalf("got %v, want %s: %s", err, tc.code, tc.want)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("refused after %s", d)
			}
			if got := s.catalogDigest(t); got != digest {
				t.Errorf("catalog digest %s, before %s", got, digest)
			}
			_, err = client.GetBundle(context.Background(), &catalogv1.GetBundleRequest{Package: "lighthouse-operator", Version: "1.5.0"})
			if status.Code(err) != codes.NotFound {
				t.Errorf("the refused bundle: %v", err)
			}
			waitUntil(t, "the upload to be released", func() bool {
				return s.metric(t, "ferry_catalogd_publish_upload_bytes") == 0 && s.metric(t, "ferry_catalogd_publish_uploads_in_progress") == 0
			})
			if rss := s.peakRSS(t); rss > maxPeakRSS {
				t.Errorf("peak RSS %.1f MiB, bound %d MiB", float64(rss)/(1<<20), maxPeakRSS>>20)
			}
			s.checkServed(t)
		})
	}
}
