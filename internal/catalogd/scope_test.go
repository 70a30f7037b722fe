package catalogd_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/blang/semver/v4"
	"google.golang.org/grpc/codes"

	"github.com/ferrydev/ferry/internal/catalog"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

const signalStoreCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: signalstores.signals.ferry.dev
spec:
  group: signals.ferry.dev
  names: {kind: SignalStore, plural: signalstores}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object}}
`

// TestPublishScopeAPIClaims: a token limited to a package may not publish a
// bundle that claims an API another package provides, however the bundle
// claims it; nothing changes when it is refused.
func TestPublishScopeAPIClaims(t *testing.T) {
	signalStore := catalog.GVK{Group: "signals.ferry.dev", Version: "v1", Kind: "SignalStore"}
	claim := func(t *testing.T, how string) string {
		t.Helper()
		spec := bundleSpec{pkg: "lighthouse-operator", version: "1.5.0", channels: []string{"fast"}, replaces: "lighthouse-operator.v1.4.0"}
		switch how {
		case "olm.gvk property":
			dir := writeBundle(t, t.TempDir(), spec)
			writeFile(t, filepath.Join(dir, "metadata", "properties.yaml"),
				"properties:\n- type: olm.gvk\n  value: {group: signals.ferry.dev, version: v1, kind: SignalStore}\n")
			return dir
		case "shipped CRD":
			spec.extra = map[string]string{"signalstores.yaml": signalStoreCRD}
			return writeBundle(t, t.TempDir(), spec)
		case "owned CRD":
			dir := writeBundle(t, t.TempDir(), spec)
			csv := filepath.Join(dir, "manifests", "lighthouse-operator.clusterserviceversion.yaml")
			writeFile(t, csv, `apiVersion: operators.coreos.com/v1alpha1
kind: ClusterServiceVersion
metadata:
  name: lighthouse-operator.v1.5.0
spec:
  version: 1.5.0
  replaces: lighthouse-operator.v1.4.0
  installModes:
  - type: AllNamespaces
    supported: true
  customresourcedefinitions:
    owned:
    - name: signalstores.signals.ferry.dev
      version: v1
      kind: SignalStore
`)
			return dir
		}
		t.Fatalf("unknown claim %q", how)
		return ""
	}
	tests := []struct {
		name, how, token string
		wantCode         codes.Code
	}{
		{"olm.gvk property, scoped token", "olm.gvk property", lighthouseToken, codes.PermissionDenied},
		{"shipped CRD, scoped token", "shipped CRD", lighthouseToken, codes.PermissionDenied},
		{"owned CRD, scoped token", "owned CRD", lighthouseToken, codes.PermissionDenied},
		{"olm.gvk property, token covering both packages", "olm.gvk property", signalsToken, codes.OK},
		{"shipped CRD, token for every package", "shipped CRD", adminToken, codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := startPublishing(t, t.TempDir())
			before := env.holder.Catalog()
			_, err := upload(t, env.client, tc.token, claim(t, tc.how))
			if tc.wantCode == codes.OK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, tc.wantCode,
				`bundle lighthouse-operator.v1.5.0 of package "lighthouse-operator" claims API signals.ferry.dev/v1, Kind=SignalStore, which package "signal-store" provides (bundle signal-store.v2.0.0); the token does not cover package "signal-store"`)
			after := env.holder.Catalog()
			if after.Digest != before.Digest {
				t.Errorf("catalog digest changed from %s to %s", before.Digest, after.Digest)
			}
			if after.Package("lighthouse-operator").BundleByVersion(semver.MustParse("1.5.0")) != nil {
				t.Error("the refused bundle is served")
			}
			for _, b := range after.Providers(signalStore) {
				if b.Package != "signal-store" {
					t.Errorf("%s of %s provides %s", b.Name, b.Package, signalStore)
				}
			}
			// The other package is still served and resolves as before.
			stream, err := env.client.ListBundles(context.Background(), &catalogv1.ListBundlesRequest{Package: "signal-store"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := recvAll[catalogv1.Bundle](stream)
			if err != nil || len(got) != len(before.Package("signal-store").Bundles) {
				t.Fatalf("signal-store after the refusal: %d bundles, %v", len(got), err)
			}
		})
	}
}
