package catalogsource

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/roguecatalog"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// follow runs a real follower of address into s until the test ends.
func follow(t *testing.T, s *Store, name, address string) {
	t.Helper()
	f := &follower{name: name, address: address, security: PlaintextSecurity(), store: s, log: logr.Discard(),
		retry: backoff{base: 50 * time.Millisecond, cap: time.Second}}
	f.start(context.Background())
	t.Cleanup(f.stop)
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		snap, ok := s.Get(name)
		return ok && snap.Catalog != nil, nil
	}); err != nil {
		st, _ := s.State(name)
		t.Fatalf("catalog %s at %s never delivered content: %+v", name, address, st)
	}
}

// settings is a bundle of package demo shipping a ConfigMap whose data
// says whose catalog it came from.
func settings(owner string) bundle {
	return bundle{pkg: "demo", version: "1.0.0", extra: map[string]string{
		"settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  owner: " + owner + "\n",
	}}
}

func configMapOwner(t *testing.T, ms []catalog.Manifest) string {
	t.Helper()
	for _, m := range ms {
		if m.Kind == "ConfigMap" {
			s := string(m.JSON)
			i := strings.Index(s, `"owner":"`)
			if i < 0 {
				t.Fatalf("ConfigMap without owner: %s", s)
			}
			rest := s[i+len(`"owner":"`):]
			return rest[:strings.IndexByte(rest, '"')]
		}
	}
	t.Fatal("no ConfigMap among the manifests")
	return ""
}

// TestRogueCatalogCannotPoisonAnother: a second catalog that claims the
// first one's catalog and bundle digests for its own content, and is
// followed first, gives the first catalog nothing: its snapshot and its
// bundles' manifests come from its own server.
func TestRogueCatalogCannotPoisonAnother(t *testing.T) {
	legit := buildCatalog(t, settings("legit"))
	legitSrv := startCatalogd(t, legit)
	rogueUp := startCatalogd(t, buildCatalog(t, settings("rogue")))
	rogueAddr := roguecatalog.Start(t, rogueUp.addr, legit, roguecatalog.Edits{})
	ctx := context.Background()

	s := NewStore()
	follow(t, s, "rogue", rogueAddr)
	rogue, _ := s.Get("rogue")
	if rogue.Digest != legit.Digest {
		t.Fatalf("the rogue catalog is held under %s, want the digest it claims, %s", rogue.Digest, legit.Digest)
	}
	ms, err := s.Manifests(ctx, "rogue", "demo", "demo.v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if got := configMapOwner(t, ms); got != "rogue" {
		t.Fatalf("the rogue catalog's own bundle has owner %q", got)
	}

	follow(t, s, "legit", legitSrv.addr)
	got, _ := s.Get("legit")
	if got.Catalog == rogue.Catalog || got.Catalog.Sources[0] != legitSrv.addr {
		t.Errorf("the legitimate catalog holds the snapshot fetched from %v, want its own from %s", got.Catalog.Sources, legitSrv.addr)
	}
	ms, err = s.Manifests(ctx, "legit", "demo", "demo.v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if owner := configMapOwner(t, ms); owner != "legit" {
		t.Errorf("the legitimate catalog's bundle has the rogue catalog's content (owner %q)", owner)
	}
	if n := legitSrv.calls("GetBundle"); n != 1 {
		t.Errorf("the legitimate catalog was asked for the bundle %v times, want once", n)
	}
}

// TestBundleAnswersMustMatchTheAnnouncement: answers that do not match
// what the catalog announced are refused with the reason, and nothing of
// them is kept.
func TestBundleAnswersMustMatchTheAnnouncement(t *testing.T) {
	clusterAdmin := &catalogv1.Manifest{ApiVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding", Name: "cluster-admin",
		Json: `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"cluster-admin"}}`}
	tests := []struct {
		name  string
		edits roguecatalog.Edits
		// calls is how many times Manifests is called; the last must fail.
		calls int
		// want is the reason; announced and received stand for the
		// manifests digests announced and received.
		want string
		// unasked: the bundle is refused without asking the catalog.
		unasked bool
	}{
		{
			name: "manifests other than announced",
			edits: roguecatalog.Edits{Answer: func(_ int, b *catalogv1.Bundle) {
				b.Manifests = append(b.Manifests, clusterAdmin)
			}},
			calls: 1,
			want:  "the manifests received hash to {received}, the catalog announced {announced}",
		},
		{
			name: "other manifests for a digest already served",
			edits: roguecatalog.Edits{Answer: func(n int, b *catalogv1.Bundle) {
				if n > 1 {
					b.Manifests = append(b.Manifests, clusterAdmin)
				}
			}},
			calls: 2,
			want:  "the manifests received hash to {received}, the catalog announced {announced}",
		},
		{
			name: "a manifest's head changed, its JSON kept",
			edits: roguecatalog.Edits{Answer: func(_ int, b *catalogv1.Bundle) {
				for _, m := range b.Manifests {
					if m.Kind == "ConfigMap" {
						m.Name = "kube-root-ca.crt"
					}
				}
			}},
			calls: 1,
			want:  "the manifests received hash to {received}, the catalog announced {announced}",
		},
		{
			name: "the answer announces its own manifests digest",
			edits: roguecatalog.Edits{Answer: func(_ int, b *catalogv1.Bundle) {
				b.Manifests = append(b.Manifests, clusterAdmin)
				b.ManifestsDigest = catalog.ManifestsDigest(toManifests(b.Manifests))
			}},
			calls: 1,
			want:  "the manifests received hash to {received}, the catalog announced {announced}",
		},
		{
			name:    "no manifests digest announced",
			edits:   roguecatalog.Edits{Snapshot: func(b *catalogv1.Bundle) { b.ManifestsDigest = "" }},
			calls:   1,
			want:    reasonNoManifestsDigest,
			unasked: true,
		},
		{
			name: "another bundle's ClusterServiceVersion, announced as such",
			edits: roguecatalog.Edits{
				Answer: func(_ int, b *catalogv1.Bundle) { renameCSV(b) },
				Snapshot: func(b *catalogv1.Bundle) {
					// The digest of the renamed manifests: they pass the
					// digest check and fail the ClusterServiceVersion check.
					renamed := &catalogv1.Bundle{Manifests: sampleManifests(t)}
					renameCSV(renamed)
					b.ManifestsDigest = catalog.ManifestsDigest(toManifests(renamed.Manifests))
				},
			},
			calls: 1,
			want:  "the manifests hold ClusterServiceVersions [demo.v9.9.9], want exactly demo.v1.0.0",
		},
		{
			name:  "another bundle",
			edits: roguecatalog.Edits{Answer: func(_ int, b *catalogv1.Bundle) { b.Name = "demo.v0.0.1" }},
			calls: 1,
			want:  `the answer is bundle demo.v0.0.1 of package "demo"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := buildCatalog(t, settings("rogue"))
			up := startCatalogd(t, c)
			var received atomic.Value // the manifests digest of the last answer
			answer := tt.edits.Answer
			tt.edits.Answer = func(n int, b *catalogv1.Bundle) {
				if answer != nil {
					answer(n, b)
				}
				received.Store(catalog.ManifestsDigest(toManifests(b.Manifests)))
			}
			addr := roguecatalog.Start(t, up.addr, c, tt.edits)
			// No manifest cache: every call asks the catalog.
			s := NewStore(WithManifestCacheBytes(0))
			follow(t, s, "rogue", addr)
			snap, _ := s.Get("rogue")
			announced := snap.Catalog.Bundle("demo", "demo.v1.0.0").ManifestsDigest()
			var ms []catalog.Manifest
			var err error
			for i := range tt.calls {
				ms, err = s.Manifests(context.Background(), "rogue", "demo", "demo.v1.0.0")
				if i < tt.calls-1 && err != nil {
					t.Fatalf("call %d: %v", i+1, err)
				}
			}
			var mismatch *ContentMismatchError
			if !errors.As(err, &mismatch) || ms != nil {
				t.Fatalf("Manifests = %d manifests, %v; want *ContentMismatchError", len(ms), err)
			}
			last, _ := received.Load().(string)
			if asked := last != ""; asked == tt.unasked {
				t.Errorf("the catalog was asked for the bundle: %v, want %v", asked, !tt.unasked)
			}
			reason := strings.NewReplacer("{announced}", announced, "{received}", last).Replace(tt.want)
			want := `catalog "rogue" at ` + addr + `: bundle demo.v1.0.0 of package "demo": ` + reason + "; the answer is refused"
			if err.Error() != want {
				t.Errorf("error = %q\nwant    %q", err, want)
			}
			if mismatch.Catalog != "rogue" || mismatch.Bundle != "demo.v1.0.0" {
				t.Errorf("error names catalog %q bundle %q", mismatch.Catalog, mismatch.Bundle)
			}
		})
	}
}

// renameCSV names the bundle's ClusterServiceVersion as another bundle's.
func renameCSV(b *catalogv1.Bundle) {
	for _, m := range b.Manifests {
		if m.Kind == catalog.KindClusterServiceVersion {
			m.Name = "demo.v9.9.9"
		}
	}
}

// sampleManifests is what the catalog of settings("rogue") serves for
// demo.v1.0.0.
func sampleManifests(t *testing.T) []*catalogv1.Manifest {
	t.Helper()
	ms, err := buildCatalog(t, settings("rogue")).Bundle("demo", "demo.v1.0.0").Manifests()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*catalogv1.Manifest, 0, len(ms))
	for _, m := range ms {
		out = append(out, &catalogv1.Manifest{ApiVersion: m.APIVersion, Kind: m.Kind, Name: m.Name, Json: string(m.JSON)})
	}
	return out
}

// toManifests converts manifests as the installer receives them.
func toManifests(ms []*catalogv1.Manifest) []catalog.Manifest {
	return ManifestsOf(&catalogv1.Bundle{Manifests: ms})
}
