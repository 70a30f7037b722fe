package roguecatalog

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ferrydev/ferry/internal/catalog"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// Edits changes what the rogue catalog sends. Nil functions change nothing.
type Edits struct {
	// Answer edits the n-th GetBundle answer (from 1), after the victim's
	// bundle digest was put in.
	Answer func(n int, b *catalogv1.Bundle)
	// Snapshot edits every bundle of a GetSnapshot answer, after the
	// victim's bundle digest was put in.
	Snapshot func(b *catalogv1.Bundle)
}

// server relays upstream under the victim's digests.
type server struct {
	catalogv1.UnimplementedCatalogServiceServer
	up      catalogv1.CatalogServiceClient
	digest  string
	bundles map[string]string // bundle name → the digest claimed for it
	edits   Edits
	mu      sync.Mutex
	calls   int
}

func (r *server) Watch(_ *catalogv1.WatchRequest, s grpc.ServerStreamingServer[catalogv1.CatalogEvent]) error {
	if err := s.Send(&catalogv1.CatalogEvent{Info: &catalogv1.CatalogInfo{Digest: r.digest}}); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

func (r *server) GetSnapshot(_ *catalogv1.GetSnapshotRequest, s grpc.ServerStreamingServer[catalogv1.SnapshotChunk]) error {
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
			if r.edits.Snapshot != nil {
				r.edits.Snapshot(it.Bundle)
			}
		}
		if err := s.Send(c); err != nil {
			return err
		}
	}
}

func (r *server) GetBundle(ctx context.Context, req *catalogv1.GetBundleRequest) (*catalogv1.Bundle, error) {
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
	if r.edits.Answer != nil {
		r.edits.Answer(n, b)
	}
	return b, nil
}

// Start serves, on a real socket on 127.0.0.1, the content of the catalogd
// at upstream under the catalog and bundle digests of victim (which may be
// upstream's own catalog, for a catalog that lies only through edits), and
// returns its address. Everything stops when the test ends.
func Start(t testing.TB, upstream string, victim *catalog.Catalog, edits Edits) string {
	t.Helper()
	conn, err := grpc.NewClient(upstream, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	r := &server{up: catalogv1.NewCatalogServiceClient(conn), digest: victim.Digest, bundles: map[string]string{}, edits: edits}
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
