package catalogsource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
)

// statusIs checks the status against a catalog and the Connected condition.
func statusIs(t *testing.T, name string, c *catalog.Catalog, connected metav1.ConditionStatus) string {
	cs := getCatalogSource(t, name)
	cond := meta.FindStatusCondition(cs.Status.Conditions, v1alpha1.TypeConnected)
	if cond == nil || cond.Status != connected {
		return fmt.Sprintf("Connected condition %+v, want %s", cond, connected)
	}
	if cond.ObservedGeneration != cs.Generation {
		return fmt.Sprintf("condition observedGeneration %d, generation %d", cond.ObservedGeneration, cs.Generation)
	}
	n := c.Counts()
	s := cs.Status
	if s.Digest != c.Digest || int(s.Packages) != n.Packages || int(s.Channels) != n.Channels || int(s.Bundles) != n.Bundles || s.LastUpdated == nil {
		return fmt.Sprintf("status %+v, want digest %s counts %+v", s, c.Digest, n)
	}
	return ""
}

// storeHas checks the Store's snapshot of name.
func storeHas(s *Store, name string, c *catalog.Catalog, connected bool) string {
	snap, ok := s.Get(name)
	if !ok {
		return "not in the store"
	}
	if snap.Digest != c.Digest || snap.Catalog.Digest != c.Digest || snap.Catalog.Counts() != c.Counts() || snap.Connected != connected {
		return fmt.Sprintf("store has %s %+v connected=%v, want %s %+v connected=%v",
			snap.Digest, snap.Catalog.Counts(), snap.Connected, c.Digest, c.Counts(), connected)
	}
	return ""
}

// TestFollowCatalog: a CatalogSource follows its catalog through a content
// change, an outage and a restart, and is forgotten when deleted.
func TestFollowCatalog(t *testing.T) {
	r, evs := startController(t)
	v1 := demoCatalog(t, 2)
	srv := startCatalogd(t, v1)
	const name = "follow"
	createCatalogSource(t, name, srv.addr)

	eventually(t, "connected", func() string { return statusIs(t, name, v1, metav1.ConditionTrue) })
	eventually(t, "stored", func() string { return storeHas(r.Store, name, v1, true) })
	if snap, _ := r.Store.Get(name); snap.Priority != 5 || snap.Name != name {
		t.Errorf("snapshot %+v", snap)
	}
	if b := mustGet(t, r.Store, name).Catalog.Bundle("demo", "demo.v1.1.0"); b == nil || b.Digest() != v1.Bundle("demo", "demo.v1.1.0").Digest() {
		t.Errorf("bundle demo.v1.1.0 not rebuilt: %+v", b)
	}
	if got := r.Store.List(); len(got) != 1 || got[0].Name != name {
		t.Errorf("List: %v", got)
	}
	eventually(t, "event on connect", func() string { return atLeast(evs.count(name), 1) })

	// New content: one more version.
	before := evs.count(name)
	v2 := demoCatalog(t, 3)
	srv.holder.Swap(v2)
	eventually(t, "new digest in status", func() string { return statusIs(t, name, v2, metav1.ConditionTrue) })
	eventually(t, "new digest in store", func() string { return storeHas(r.Store, name, v2, true) })
	eventually(t, "event on change", func() string { return atLeast(evs.count(name), before+1) })
	if mustGet(t, r.Store, name).Catalog.Bundle("demo", "demo.v1.2.0") == nil {
		t.Error("new bundle missing from the store")
	}

	// Outage: disconnected, last content kept.
	before = evs.count(name)
	srv.stop()
	eventually(t, "disconnected", func() string { return statusIs(t, name, v2, metav1.ConditionFalse) })
	cond := meta.FindStatusCondition(getCatalogSource(t, name).Status.Conditions, v1alpha1.TypeConnected)
	if cond.Reason != v1alpha1.ReasonUnreachable || !strings.HasPrefix(cond.Message, "catalog at "+srv.addr+" unreachable: ") || strings.Contains(cond.Message, "rpc error") {
		t.Errorf("condition %+v", cond)
	}
	eventually(t, "store keeps content", func() string { return storeHas(r.Store, name, v2, false) })
	if snap := mustGet(t, r.Store, name); snap.Err == nil || snap.Err.Error() != cond.Message {
		t.Errorf("store error %v, condition message %q", snap.Err, cond.Message)
	}
	eventually(t, "event on disconnect", func() string { return atLeast(evs.count(name), before+1) })

	// Restart on the same port: reconnects without fetching the same digest again.
	srv.start()
	eventually(t, "reconnected", func() string { return statusIs(t, name, v2, metav1.ConditionTrue) })
	eventually(t, "store connected", func() string { return storeHas(r.Store, name, v2, true) })
	if n := srv.calls("GetSnapshot"); n != 0 {
		t.Errorf("%v GetSnapshot calls after reconnecting to the same digest, want 0", n)
	}

	// Delete: the follower stops and the store forgets.
	if err := env.Client.Delete(context.Background(), getCatalogSource(t, name)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "forgotten", func() string {
		if _, ok := r.Store.State(name); ok {
			return "still in the store"
		}
		if n := r.followerCount(); n != 0 {
			return fmt.Sprintf("%d followers", n)
		}
		return ""
	})
	if got := r.Store.List(); len(got) != 0 {
		t.Errorf("List after delete: %v", got)
	}
}

// TestUnreachableFromStart: a CatalogSource whose catalogd never answers
// is reported unreachable and has no content.
func TestUnreachableFromStart(t *testing.T) {
	r, _ := startController(t)
	srv := startCatalogd(t, demoCatalog(t, 1))
	addr := srv.addr
	srv.stop()
	const name = "unreachable"
	createCatalogSource(t, name, addr)
	eventually(t, "unreachable", func() string {
		cs := getCatalogSource(t, name)
		cond := meta.FindStatusCondition(cs.Status.Conditions, v1alpha1.TypeConnected)
		if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != v1alpha1.ReasonUnreachable ||
			!strings.HasPrefix(cond.Message, "catalog at "+addr+" unreachable: ") {
			return fmt.Sprintf("condition %+v", cond)
		}
		return ""
	})
	if _, ok := r.Store.Get(name); ok {
		t.Error("Get returns content for a catalog never reached")
	}
	if snap, ok := r.Store.State(name); !ok || snap.Connected || snap.Err == nil {
		t.Errorf("State %+v, %v", snap, ok)
	}
	if _, err := r.Store.Manifests(context.Background(), name, "demo", "demo.v1.0.0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Manifests: %v, want ErrNotFound", err)
	}
}

// TestAddressChange: changing spec.address follows the new catalogd.
func TestAddressChange(t *testing.T) {
	r, _ := startController(t)
	one, two := demoCatalog(t, 1), demoCatalog(t, 2)
	srv1, srv2 := startCatalogd(t, one), startCatalogd(t, two)
	const name = "moving"
	createCatalogSource(t, name, srv1.addr)
	eventually(t, "first catalog", func() string { return statusIs(t, name, one, metav1.ConditionTrue) })

	cs := getCatalogSource(t, name)
	cs.Spec.Address = srv2.addr
	if err := env.Client.Update(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
	eventually(t, "second catalog", func() string { return statusIs(t, name, two, metav1.ConditionTrue) })
	eventually(t, "second catalog in store", func() string {
		if msg := storeHas(r.Store, name, two, true); msg != "" {
			return msg
		}
		if snap := mustGet(t, r.Store, name); snap.Address != srv2.addr {
			return "address " + snap.Address
		}
		return ""
	})
	if n := r.followerCount(); n != 1 {
		t.Errorf("%d followers, want 1", n)
	}
}

// TestSameDigestFetchedFromEachCatalog: CatalogSources serving the same
// digest each fetch and hold their own content: a digest another catalog
// claims is no reason to trust it (see TestRogueCatalogCannotPoisonAnother).
func TestSameDigestFetchedFromEachCatalog(t *testing.T) {
	r, _ := startController(t)
	c := demoCatalog(t, 2)
	srvA := startCatalogd(t, c)
	srvB := startCatalogd(t, demoCatalog(t, 2))
	if srvB.holder.Catalog().Digest != c.Digest {
		t.Fatalf("fixtures differ: %s %s", srvB.holder.Catalog().Digest, c.Digest)
	}
	createCatalogSource(t, "shared-a", srvA.addr)
	eventually(t, "a stored", func() string { return storeHas(r.Store, "shared-a", c, true) })
	createCatalogSource(t, "shared-b", srvB.addr)
	eventually(t, "b stored", func() string { return storeHas(r.Store, "shared-b", c, true) })

	a, b := mustGet(t, r.Store, "shared-a"), mustGet(t, r.Store, "shared-b")
	if a.Catalog == b.Catalog || a.Digest != b.Digest {
		t.Error("two catalogs with the same digest share one snapshot")
	}
	if n := srvB.calls("GetSnapshot"); n != 1 {
		t.Errorf("%v GetSnapshot calls to the second catalog, want 1: its own content", n)
	}
	if got := r.Store.List(); len(got) != 2 || got[0].Name != "shared-a" || got[1].Name != "shared-b" {
		t.Errorf("List: %v", got)
	}
}

// TestManifests: the Store fetches a bundle's manifests, also larger than
// gRPC's default 4 MiB message limit, once per bundle digest.
func TestManifests(t *testing.T) {
	r, _ := startController(t)
	big := strings.Repeat("x", 5<<20)
	c := buildCatalog(t,
		bundle{pkg: "big", version: "1.0.0", extra: map[string]string{
			"big.configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big-data\ndata:\n  blob: " + big + "\n",
		}},
	)
	srv := startCatalogd(t, c)
	const name = "manifests"
	createCatalogSource(t, name, srv.addr)
	eventually(t, "stored", func() string { return storeHas(r.Store, name, c, true) })

	ctx := context.Background()
	ms, err := r.Store.Manifests(ctx, name, "big", "big.v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	want, err := c.Bundle("big", "big.v1.0.0").Manifests()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != len(want) || len(ms) != 2 {
		t.Fatalf("%d manifests, want %d", len(ms), len(want))
	}
	var sawBig, sawCSV bool
	for i, m := range ms {
		if m.Kind != want[i].Kind || m.Name != want[i].Name || string(m.JSON) != string(want[i].JSON) {
			t.Errorf("manifest %d: %s %s differs from the catalog's %s %s", i, m.Kind, m.Name, want[i].Kind, want[i].Name)
		}
		sawBig = sawBig || (m.Kind == "ConfigMap" && len(m.JSON) > 4<<20)
		sawCSV = sawCSV || m.Kind == catalog.KindClusterServiceVersion
	}
	if !sawBig || !sawCSV {
		t.Errorf("big ConfigMap %v, CSV %v", sawBig, sawCSV)
	}
	if _, err := r.Store.Manifests(ctx, name, "big", "big.v1.0.0"); err != nil {
		t.Fatal(err)
	}
	if n := srv.calls("GetBundle"); n != 1 {
		t.Errorf("%v GetBundle calls, want 1 (the second answer comes from the cache)", n)
	}
	if _, err := r.Store.Manifests(ctx, name, "big", "big.v9.0.0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown bundle: %v", err)
	}
}

func mustGet(t *testing.T, s *Store, name string) *Snapshot {
	t.Helper()
	snap, ok := s.Get(name)
	if !ok {
		t.Fatalf("%s not in the store", name)
	}
	return snap
}

func atLeast(got, want int) string {
	if got < want {
		return fmt.Sprintf("%d, want at least %d", got, want)
	}
	return ""
}

// TestStatusWrittenOnlyOnChange: reconciling again without news writes
// nothing; a priority change reaches the Store, its event and the
// condition's observedGeneration.
func TestStatusWrittenOnlyOnChange(t *testing.T) {
	r, evs := startController(t)
	c := demoCatalog(t, 1)
	srv := startCatalogd(t, c)
	const name = "quiet"
	createCatalogSource(t, name, srv.addr)
	eventually(t, "connected", func() string { return statusIs(t, name, c, metav1.ConditionTrue) })

	ctx := context.Background()
	before := getCatalogSource(t, name).ResourceVersion
	for range 3 {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	if after := getCatalogSource(t, name).ResourceVersion; after != before {
		t.Errorf("resourceVersion %s → %s: status written without a change", before, after)
	}

	n := evs.count(name)
	cs := getCatalogSource(t, name)
	cs.Spec.Priority = 42
	if err := env.Client.Update(ctx, cs); err != nil {
		t.Fatal(err)
	}
	eventually(t, "priority in store", func() string {
		if snap := mustGet(t, r.Store, name); snap.Priority != 42 {
			return fmt.Sprintf("priority %d", snap.Priority)
		}
		return atLeast(evs.count(name), n+1)
	})
	eventually(t, "observed generation", func() string { return statusIs(t, name, c, metav1.ConditionTrue) })
}
