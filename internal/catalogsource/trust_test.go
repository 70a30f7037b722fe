package catalogsource

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ferrydev/ferry/internal/catalog"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// rogueCatalog is a catalog server that serves its own content (that of a
// real catalogd upstream) under the digests of another catalog: the
// catalog digest, and every bundle digest, it claims are the victim's.
type rogueCatalog struct {
	catalogv1.UnimplementedCatalogServiceServer
	up      catalogv1.CatalogServiceClient
	digest  string
	bundles map[string]string // bundle name → the digest claimed for it
	// answer, when set, edits the n-th GetBundle answer (from 1).
	answer func(n int, b *catalogv1.Bundle)
	mu     sync.Mutex
	calls  int
}

func (r *rogueCatalog) Watch(_ *catalogv1.WatchRequest, s grpc.ServerStreamingServer[catalogv1.CatalogEvent]) error {
	if err := s.Send(&catalogv1.CatalogEvent{Info: &catalogv1.CatalogInfo{Digest: r.digest}}); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

func (r *rogueCatalog) GetSnapshot(_ *catalogv1.GetSnapshotRequest, s grpc.ServerStreamingServer[catalogv1.SnapshotChunk]) error {
	up, err := r.up.GetSnapshot(s.Context(), &catalogv1.GetSnapshotRequest{})
	if err != nil {
		return err
	}
	for {
		c, err := up.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch it := c.GetItem().(type) {
		case *catalogv1.SnapshotChunk_Info:
			it.Info.Digest = r.digest
		case *catalogv1.SnapshotChunk_Bundle:
			if d, ok := r.bundles[it.Bundle.GetName()]; ok {
				it.Bundle.Digest = d
			}
		}
		if err := s.Send(c); err != nil {
			return err
		}
	}
}

func (r *rogueCatalog) GetBundle(ctx context.Context, req *catalogv1.GetBundleRequest) (*catalogv1.Bundle, error) {
	b, err := r.up.GetBundle(ctx, req)
	if err != nil {
		return nil, err
	}
	if d, ok := r.bundles[b.GetName()]; ok {
		b.Digest = d
	}
	r.mu.Lock()
	r.calls++
	n := r.calls
	r.mu.Unlock()
	if r.answer != nil {
		r.answer(n, b)
	}
	return b, nil
}

// startRogue serves, on a real socket, the content of upstream under the
// digests of victim.
func startRogue(t *testing.T, upstream string, victim *catalog.Catalog, answer func(int, *catalogv1.Bundle)) string {
	t.Helper()
	conn, err := grpc.NewClient(upstream, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	r := &rogueCatalog{up: catalogv1.NewCatalogServiceClient(conn), digest: victim.Digest, bundles: map[string]string{}, answer: answer}
	for _, p := range victim.Packages {
		for _, b := range p.Bundles {
			r.bundles[b.Name] = b.Digest()
		}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	catalogv1.RegisterCatalogServiceServer(srv, r)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// follow runs a real follower of address into s until the test ends.
func follow(t *testing.T, s *Store, name, address string) {
	t.Helper()
	f := &follower{name: name, address: address, security: PlaintextSecurity(), store: s, log: logr.Discard(),
		retry: backoff{base: 50 * time.Millisecond, cap: time.Second}}
	f.start(context.Background())
	t.Cleanup(f.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if snap, ok := s.Get(name); ok && snap.Catalog != nil {
			return
		}
		if time.Now().After(deadline) {
			st, _ := s.State(name)
			t.Fatalf("catalog %s at %s never delivered content: %+v", name, address, st)
		}
		time.Sleep(20 * time.Millisecond)
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
	rogueAddr := startRogue(t, rogueUp.addr, legit, nil)
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
	tests := []struct {
		name   string
		answer func(n int, b *catalogv1.Bundle)
		// calls is how many times Manifests is called; the last must fail.
		calls int
		want  string
	}{
		{
			name: "other manifests for a digest already served",
			answer: func(n int, b *catalogv1.Bundle) {
				if n > 1 {
					b.Manifests = append(b.Manifests, &catalogv1.Manifest{ApiVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding", Name: "cluster-admin",
						Json: `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"cluster-admin"}}`})
				}
			},
			calls: 2,
			want:  `was first served with manifests sha256:`,
		},
		{
			name: "another bundle's ClusterServiceVersion",
			answer: func(_ int, b *catalogv1.Bundle) {
				for _, m := range b.Manifests {
					if m.Kind == catalog.KindClusterServiceVersion {
						m.Name = "demo.v9.9.9"
					}
				}
			},
			calls: 1,
			want:  "the manifests hold ClusterServiceVersions [demo.v9.9.9], want exactly demo.v1.0.0",
		},
		{
			name:   "another bundle",
			answer: func(_ int, b *catalogv1.Bundle) { b.Name = "demo.v0.0.1" },
			calls:  1,
			want:   `the answer is bundle demo.v0.0.1 of package "demo"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := buildCatalog(t, settings("rogue"))
			up := startCatalogd(t, c)
			addr := startRogue(t, up.addr, c, tt.answer)
			// No manifest cache: every call asks the catalog.
			s := NewStore(WithManifestCacheBytes(0))
			follow(t, s, "rogue", addr)
			var err error
			for range tt.calls {
				_, err = s.Manifests(context.Background(), "rogue", "demo", "demo.v1.0.0")
			}
			var mismatch *ContentMismatchError
			if !errors.As(err, &mismatch) {
				t.Fatalf("Manifests = %v, want *ContentMismatchError", err)
			}
			prefix := `catalog "rogue" at ` + addr + `: bundle demo.v1.0.0 of package "demo": `
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) || !strings.HasSuffix(err.Error(), "; the answer is refused") {
				t.Errorf("error = %q\nwant %q … %q … \"; the answer is refused\"", err, prefix, tt.want)
			}
		})
	}
}
