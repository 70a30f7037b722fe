//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/ociimage/ocitest"
	"github.com/ferrydev/ferry/internal/testregistry"
)

// TestCatalogImageUpgrade: catalogd serves a catalog image from a registry
// process whose bundles are listed by image only; the installer installs
// the sample operator from it, and pushing a newer catalog image to the
// tag upgrades the operator, nothing restarted. catalogd runs in its
// default mode: it pulls a bundle image when the installer first asks for
// the bundle, and announces its manifests digest in the next snapshot.
func TestCatalogImageUpgrade(t *testing.T) {
	addr := testregistry.Start(t)
	tree := os.DirFS(filepath.Join(f.ModuleRoot, "bundles"))
	older, _ := ocitest.ImageOnly(t, addr, ocitest.Without(t, tree, "lighthouse-operator/1.3.0", "lighthouse-operator/1.4.0"))
	newer, _ := ocitest.ImageOnly(t, addr, ocitest.Without(t, tree, "lighthouse-operator/1.4.0"))
	ref := addr + "/ferry/catalog:e2e"
	ocitest.Push(t, ref, older)

	// The catalog directory of the test catalogd holds no package: every
	// bundle comes from the images, pulled on request.
	env := startInstallerWith(t, []string{"--catalog=oci://" + ref, "--image-cache-dir=" + t.TempDir(), "--poll-interval=1s"},
		"lighthouse-operator", "signal-store", "beacon-metrics")
	freshCRDs(t, env.client, "beacons.lighthouse.ferry.dev", "signalstores.signals.ferry.dev")
	ns := f.CreateNamespace(t)
	env.subscription(t, ns, "lighthouse", v1alpha1.SubscriptionSpec{Package: "lighthouse-operator", Channel: "stable"})
	env.waitFor(t, ns, "lighthouse", "installed at 1.2.0 from the catalog image", installedAt("1.2.0"))

	ocitest.Push(t, ref, newer)
	env.waitFor(t, ns, "lighthouse", "upgraded to 1.3.0 from the newer catalog image", installedAt("1.3.0"))
	env.uninstallAll(t, ns)
}
