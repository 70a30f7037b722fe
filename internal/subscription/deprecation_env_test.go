package subscription_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
)

// fbcSample writes the sample catalog as a file-based catalog in a new
// directory, with deprecations (an olm.deprecations document, or "") in a
// file of its own, and returns the directory.
func fbcSample(t *testing.T, deprecations string) string {
	t.Helper()
	c, err := catalog.Load(context.Background(), []catalog.Source{catalog.DirSource(sampleDir(t))}, catalog.WithStrict(true))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var b strings.Builder
	if err := catalog.Render(&b, c); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "catalog.json"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	setDeprecations(t, dir, deprecations)
	return dir
}

// setDeprecations replaces the olm.deprecations document of a catalog
// written by fbcSample ("" removes it).
func setDeprecations(t *testing.T, dir, doc string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "deprecations.json"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDeprecatedChannel: a Subscription following a channel its catalog
// deprecates says so in ChannelDeprecated and Deprecated, with the
// catalog's message, and the conditions go away once the catalog no longer
// deprecates it.
func TestDeprecatedChannel(t *testing.T) {
	const msg = "stable is retired; follow stable-v2"
	dir := fbcSample(t, `{"schema":"olm.deprecations","package":"signal-store","entries":[{"reference":{"schema":"olm.channel","name":"stable"},"message":"`+msg+`"}]}`)
	srv, c, ns, cat := setup(t, dir, nil)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", Channel: "stable"})
	sub := waitSub(t, c, ns, "signals", "installed with its channel deprecated", func(s *v1alpha1.Subscription) bool {
		return installed("1.1.0")(s) && condition(s, v1alpha1.TypeChannelDeprecated) != nil
	})
	want := `channel "stable" is deprecated in catalog "` + cat + `": ` + msg
	for _, typ := range []string{v1alpha1.TypeChannelDeprecated, v1alpha1.TypeDeprecated} {
		if got := condition(sub, typ); got == nil || got.Status != metav1.ConditionTrue || got.Reason != v1alpha1.ReasonDeprecated || got.Message != want {
			t.Errorf("%s = %+v, want True %q", typ, got, want)
		}
	}
	for _, typ := range []string{v1alpha1.TypePackageDeprecated, v1alpha1.TypeBundleDeprecated} {
		if got := condition(sub, typ); got != nil {
			t.Errorf("%s = %+v, want none", typ, got)
		}
	}
	if r := sub.Status.Resolution; len(r) == 0 || !r[0].Chosen || r[0].Bundle != "signal-store.v1.1.0" || r[0].Catalog != cat {
		t.Errorf("resolution = %+v, want signal-store.v1.1.0 chosen first", r)
	}

	digest := sub.Status.CatalogDigest
	setDeprecations(t, dir, "")
	srv.reload(t)
	sub = waitSub(t, c, ns, "signals", "resolved with the new catalog", func(s *v1alpha1.Subscription) bool {
		return s.Status.CatalogDigest != digest && condition(s, v1alpha1.TypeResolved) != nil
	})
	for _, typ := range []string{v1alpha1.TypeDeprecated, v1alpha1.TypePackageDeprecated, v1alpha1.TypeChannelDeprecated, v1alpha1.TypeBundleDeprecated} {
		if got := condition(sub, typ); got != nil {
			t.Errorf("after the deprecation was withdrawn, %s = %+v, want none", typ, got)
		}
	}
}
