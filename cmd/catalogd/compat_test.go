package main

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/proto/api"
)

// TestServeOperatorRegistryServices runs catalogd as a process on the
// compatibility catalog and checks, over TCP, what operator-registry's
// clients rely on beyond the golden answers of internal/catalogd: health for
// both services, property values in wire form, and the acknowledgement
// header of api.ExperimentalRegistry travelling as metadata.
func TestServeOperatorRegistryServices(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs catalogd")
	}
	// The catalog names bundle images in no registry: ask none.
	s := startCatalogd(t, buildCatalogd(t), "--catalog", "../../internal/catalogd/testdata/compat/catalog", "--bundle-images", "off")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, name := range []string{"", "Registry", "api.ExperimentalRegistry"} {
		resp, err := healthpb.NewHealthClient(s.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q: %v, %v; want SERVING", name, resp.GetStatus(), err)
		}
	}

	b, err := api.NewRegistryClient(s.conn).GetBundle(ctx, &api.GetBundleRequest{PkgName: "aurora-operator", ChannelName: "stable", CsvName: "aurora-operator.v1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	const wantGVK = `{"group":"aurora.example.com","kind":"Aurora","version":"v1"}`
	if got := b.GetProperties()[1].GetValue(); got != wantGVK {
		t.Errorf("olm.gvk value %q, want %q", got, wantGVK)
	}

	exp := api.NewExperimentalRegistryClient(s.conn)
	list := func(ctx context.Context, schema string) (int, error) {
		stream, err := exp.ExperimentalListPackageCustomSchemas(ctx, &api.ExperimentalListPackageCustomSchemasRequest{Schema: schema, PackageName: "aurora-operator"})
		if err != nil {
			return 0, err
		}
		n := 0
		for {
			_, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			if err != nil {
				return n, err
			}
			n++
		}
	}
	acked := metadata.AppendToOutgoingContext(ctx, catalogd.ExperimentalAckHeader, catalogd.ExperimentalAckValue)
	tests := []struct {
		name   string
		ctx    context.Context
		schema string
		want   int
		code   codes.Code
	}{
		{"acknowledged", acked, "io.example.notes", 1, codes.OK},
		{"not acknowledged", ctx, "io.example.notes", 0, codes.OK},
		{"malformed schema", acked, "io.example/notes", 0, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := list(tt.ctx, tt.schema)
			if status.Code(err) != tt.code || n != tt.want {
				t.Errorf("%d documents, %v; want %d, code %v", n, err, tt.want, tt.code)
			}
		})
	}
}
