package subscription_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/roguecatalog"
	"github.com/ferrydev/ferry/internal/testenv"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// TestManifestsOtherThanAnnouncedInstallNothing: a catalog announces a
// bundle's manifests digest in its snapshot and serves, for that bundle,
// manifests with a ClusterRoleBinding added. The Subscription reports
// ContentMismatch naming the catalog, the bundle and both digests, and
// nothing of the bundle is applied.
func TestManifestsOtherThanAnnouncedInstallNothing(t *testing.T) {
	const bundle = "signal-store.v1.1.0"
	binding := `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"signal-store-takeover"},` +
		`"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},` +
		`"subjects":[{"kind":"ServiceAccount","name":"default","namespace":"default"}]}`
	freshCRDs(t, "beacons.lighthouse.ferry.dev", "signalstores.signals.ferry.dev")
	up := startCatalogd(t, sampleDir(t))
	served := up.holder.Catalog()
	var received atomic.Value // the manifests digest of the last answer for the bundle
	addr := roguecatalog.Start(t, up.addr, served, roguecatalog.Edits{Answer: func(_ int, b *catalogv1.Bundle) {
		if b.GetName() != bundle {
			return
		}
		b.Manifests = append(b.Manifests, &catalogv1.Manifest{ApiVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding", Name: "signal-store-takeover", Json: binding})
		ms := make([]catalog.Manifest, 0, len(b.Manifests))
		for _, m := range b.Manifests {
			ms = append(ms, catalog.Manifest{APIVersion: m.GetApiVersion(), Kind: m.GetKind(), Name: m.GetName(), JSON: []byte(m.GetJson())})
		}
		received.Store(catalog.ManifestsDigest(ms))
	}})
	ns := namespace(t)
	c := startManager(t, ns)
	markHealthy(t, ns, nil)
	cat := catalogSource(t, c, addr)

	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", StartingVersion: "1.1.0"})
	sub := waitSub(t, c, ns, "signals", "refused", func(s *v1alpha1.Subscription) bool {
		cond := condition(s, v1alpha1.TypeInstalled)
		return cond != nil && cond.Reason == v1alpha1.ReasonContentMismatch
	})
	announced := served.Bundle("signal-store", bundle).ManifestsDigest()
	got, _ := received.Load().(string)
	if announced == "" || got == "" || got == announced {
		t.Fatalf("announced %q, received %q: the test needs two different digests", announced, got)
	}
	msg := condition(sub, v1alpha1.TypeInstalled).Message
	want := `catalog "` + cat + `" at ` + addr + `: bundle ` + bundle + ` of package "signal-store": the manifests received hash to ` + got +
		`, the catalog announced ` + announced + `; the answer is refused`
	if !strings.Contains(msg, want) {
		t.Errorf("Installed condition message\n%s\nwant it to contain\n%s", msg, want)
	}
	if sub.Status.State != v1alpha1.StateFailed || sub.Status.InstalledVersion != "" {
		t.Errorf("state %s, installed %q; want Failed and nothing installed", sub.Status.State, sub.Status.InstalledVersion)
	}

	ctx := context.Background()
	var deps appsv1.DeploymentList
	if err := c.List(ctx, &deps, client.InNamespace(ns)); err != nil || len(deps.Items) != 0 {
		t.Errorf("something was applied: %d Deployments (%v)", len(deps.Items), err)
	}
	var sas corev1.ServiceAccountList
	if err := c.List(ctx, &sas, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, sa := range sas.Items {
		if sa.Name != "default" && sa.Name != testenv.TenantServiceAccount {
			t.Errorf("ServiceAccount %s was applied", sa.Name)
		}
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "signal-store-takeover"}, &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
		t.Errorf("the added ClusterRoleBinding: %v, want NotFound", err)
	}
	if revs := revisionsOf(t, c, ns, "signals"); len(revs) != 0 {
		t.Errorf("%d Revisions recorded, want none", len(revs))
	}
}
