package resolver

import (
	"context"
	"testing"
)

// TestDependencyFromDefaultChannel: a dependency comes from its package's
// default channel even when a preview channel has a higher version.
func TestDependencyFromDefaultChannel(t *testing.T) {
	cat := snapshot(t, "community", 0,
		pkgDoc("app", "stable"), chDoc("app", "stable", ent("app", "1.0.0")),
		bundleDoc("app", "1.0.0", needsPkg("db", ">=1.0.0")),
		pkgDoc("db", "stable"),
		chDoc("db", "stable", ent("db", "1.0.0"), ent("db", "1.1.0", "replaces", "1.0.0")),
		chDoc("db", "fast", ent("db", "1.1.0"), ent("db", "2.0.0", "replaces", "1.1.0")),
		bundleDoc("db", "1.0.0"), bundleDoc("db", "1.1.0"), bundleDoc("db", "2.0.0"),
	)
	res, err := Resolve(context.Background(), Request{Catalogs: []Snapshot{cat}, Subscriptions: []Subscription{sub("ns", "app", "app")}})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Decisions[0]
	if len(d.Dependencies) != 1 || d.Dependencies[0].Bundle != "db.v1.1.0" {
		t.Fatalf("dependencies = %+v, want db.v1.1.0 from the default channel", d.Dependencies)
	}
}
