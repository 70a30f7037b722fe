package catalog

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// corpusFile returns the path of a file under ../shared/corpus next to the
// module, skipping the test when that directory does not exist (as in a
// user's own clone).
func corpusFile(t testing.TB, name string) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..")
	p := filepath.Join(root, "..", "shared", "corpus", name)
	if _, err := os.Stat(filepath.Dir(p)); os.IsNotExist(err) {
		t.Skipf("%s is absent: the shared corpus of real catalogs is not next to this clone", filepath.Dir(p))
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("corpus file: %v", err)
	}
	return p
}

// extract unpacks a .tar.xz into dir.
func extract(t testing.TB, archive, dir string) {
	t.Helper()
	out, err := exec.Command("tar", "-xJf", archive, "-C", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("extracting %s: %v\n%s", archive, err, out)
	}
}

func TestCommunityOperatorsMessy(t *testing.T) {
	archive := corpusFile(t, "community-operators-messy.tar.xz")
	dir := t.TempDir()
	extract(t, archive, dir)
	c, err := Load(context.Background(), []Source{{Name: "community", Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	perPackage := map[string]int{}
	for _, p := range c.Packages {
		perPackage[p.Name] = len(p.Bundles)
	}
	wantPerPackage := map[string]int{
		"aqua": 27, "automotive-infra": 7, "bpfman-operator": 9, "community-trivy-operator": 4, "etcd": 6,
		"jupyter-notebook-validator-operator": 2, "kuadrant-operator": 14, "l5-operator": 2,
		"multicluster-operators-subscription": 30, "ndmspc-operator": 16, "node-healthcheck-operator": 12,
		"prometheus": 8, "rabbitmq-messaging-topology-operator": 20, "sosivio": 22,
	}
	for name, n := range wantPerPackage {
		if perPackage[name] != n {
			t.Errorf("package %s: %d bundles served, want %d", name, perPackage[name], n)
		}
	}
	for name := range perPackage {
		if _, ok := wantPerPackage[name]; !ok {
			t.Errorf("package %s served, want it refused (eventing-kogito and pelorus-operator have no servable bundle)", name)
		}
	}
	// automotive-infra 0.0.3 is refused, which strands 0.0.1 and 0.0.2 (0.0.4
	// replaces it); rabbitmq-messaging-topology-operator 1.18.3-1.19.1 form a
	// second head and are stranded.
	//
	// Dependencies of the well-formed packages survive.
	var withDeps int
	if k := c.Package("kuadrant-operator"); k != nil {
		for _, b := range k.Bundles {
			if len(b.RequiredPackages) > 0 {
				withDeps++
			}
		}
	}
	if withDeps == 0 {
		t.Errorf("no kuadrant-operator bundle kept its olm.package dependencies")
	}
	// Every served bundle's manifests hash to the digest announced for them.
	checkManifestsDigests(t, c, 179)

	wantErrors := []string{
		`community/aqua/2022.4.0: channel "2022.4.0": stranded`,
		`community/automotive-infra/0.0.3/manifests/automotive-infra.clusterserviceversion.yaml: apiVersion: missing (found "ApiVersion"; field names are case-sensitive)`,
		`community/eventing-kogito/1.1.0/metadata/dependencies.yaml: not valid YAML: error converting YAML to JSON: yaml: line 22: mapping values are not allowed in this context`,
		`community/eventing-kogito/1.2.0/metadata/dependencies.yaml: not valid YAML: error converting YAML to JSON: yaml: line 22: mapping values are not allowed in this context`,
		`community/jupyter-notebook-validator-operator/1.0.7/manifests/: directory missing; 10 manifest files lie at the bundle root, but registry+v1 requires them under manifests/`,
		`community/ndmspc-operator/0.20250209.0/metadata/dependency.yaml: unknown metadata file (expected dependencies.yaml or properties.yaml); the bundle is not served because what it declares would be ignored`,
		`community/pelorus-operator/0.0.1/metadata/properties.yaml: dependencies: dependencies belong in dependencies.yaml; a properties file holds "properties:", so these would be ignored`,
		`community/rabbitmq-messaging-topology-operator/: channel "stable": channel "stable" has 2 heads [rabbitmq-messaging-topology-operator.v1.19.1 rabbitmq-messaging-topology-operator.v1.19.3]; serving the highest version "rabbitmq-messaging-topology-operator.v1.19.3" as head, the others are stranded`,
	}
	wantWarnings := []string{
		`community/ndmspc-operator/0.7.2/manifests/ndmspc-operator.clusterserviceversion.yaml: spec.version: version 0.7.1 differs from directory "0.7.2"; the CSV's version is used`,
		`community/rabbitmq-messaging-topology-operator/1.18.3/: bundle found one level down in bundle/; loaded from there`,
		`community/rabbitmq-messaging-topology-operator/catalog-templates/: not a bundle directory (no metadata/ or manifests/); ignored`,
		`community/sosivio/1.4.4/manifests/sosivio-operator.clusterserviceversion.yaml: spec.relatedImages[18].name: missing; image quay.io/sosivio/notifier@sha256:de59cdf84e22b63312d0a94ff30cc4e3c3954ccdeaa87af609a3f83a1cf1a4ea kept without a name`,
	}
	var errs, warns []string
	for _, p := range c.Problems {
		if p.Severity == SeverityError {
			errs = append(errs, p.String())
		} else {
			warns = append(warns, p.String())
		}
	}
	for _, w := range wantErrors {
		if !slices.ContainsFunc(errs, func(s string) bool { return strings.HasPrefix(s, w) }) {
			t.Errorf("missing error %q", w)
		}
	}
	for _, w := range wantWarnings {
		if !slices.Contains(warns, w) {
			t.Errorf("missing warning %q", w)
		}
	}
	if len(errs) != 35 {
		t.Errorf("%d errors, want 35", len(errs))
	}
	if t.Failed() {
		for _, p := range c.Problems {
			t.Log(p.Severity, p)
		}
	}
}

// TestCommunityProdFullManifestsDigests: every bundle of a real-size
// file-based catalog serves manifests that hash to the manifests digest
// computed at load, also those read again from disk.
func TestCommunityProdFullManifestsDigests(t *testing.T) {
	archive := corpusFile(t, "community-prod-full-fbc.tar.xz")
	dir := t.TempDir()
	extract(t, archive, dir)
	c, err := Load(context.Background(), []Source{{Name: "community", Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	onDisk := 0
	for _, p := range c.Packages {
		for _, b := range p.Bundles {
			if _, ok := b.manifests.(*blobRef); ok {
				onDisk++
			}
		}
	}
	// Large files stay on disk, small ones are held in memory: both kinds
	// are checked.
	if n := c.Counts().Bundles; n < 6000 || onDisk == 0 || onDisk == n {
		t.Fatalf("%d bundles, %d of them read from disk; want more than 6000, some of them on disk", n, onDisk)
	}
	checkManifestsDigests(t, c, 6000)
}
