package catalogd_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	"github.com/ferrydev/ferry/internal/catalogd"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

func TestHealth(t *testing.T) {
	conn := startServer(t, catalogd.NewHolder(sampleCatalog(t)))
	cl := healthpb.NewHealthClient(conn)
	for _, name := range catalogd.HealthServices {
		t.Run("service "+name, func(t *testing.T) {
			resp, err := cl.Check(context.Background(), &healthpb.HealthCheckRequest{Service: name})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("status %v, want SERVING", resp.Status)
			}
		})
	}
	for _, want := range []string{"", "Registry"} {
		found := false
		for _, name := range catalogd.HealthServices {
			found = found || name == want
		}
		if !found {
			t.Errorf("HealthServices lacks %q", want)
		}
	}
	t.Run("unknown service", func(t *testing.T) {
		_, err := cl.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "no.such.Service"})
		checkCode(t, err, codes.NotFound)
	})
}

func TestReflection(t *testing.T) {
	conn := startServer(t, catalogd.NewHolder(sampleCatalog(t)))
	want := []string{"api.ExperimentalRegistry", "api.Registry", "ferry.catalog.v1.CatalogService", "grpc.health.v1.Health"}

	t.Run("v1", func(t *testing.T) {
		stream, err := reflectionv1.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&reflectionv1.ServerReflectionRequest{
			MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{},
		}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.CloseSend()
		var got []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			got = append(got, s.Name)
		}
		checkListed(t, got, want)

		// The descriptors are served too, so grpcurl can call the methods.
		if err := func() error {
			s, err := reflectionv1.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
			if err != nil {
				return err
			}
			defer func() { _ = s.CloseSend() }()
			if err := s.Send(&reflectionv1.ServerReflectionRequest{
				MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "api.Registry"},
			}); err != nil {
				return err
			}
			r, err := s.Recv()
			if err != nil {
				return err
			}
			if len(r.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
				t.Errorf("no file descriptor for api.Registry: %v", r)
			}
			return nil
		}(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("v1alpha", func(t *testing.T) {
		stream, err := reflectionv1alpha.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&reflectionv1alpha.ServerReflectionRequest{
			MessageRequest: &reflectionv1alpha.ServerReflectionRequest_ListServices{},
		}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.CloseSend()
		var got []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			got = append(got, s.Name)
		}
		checkListed(t, got, want)
	})
}

func checkListed(t *testing.T, got, want []string) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("service %s not listed in %v", w, got)
		}
	}
}

// TestLargeBundle fetches a bundle whose manifests exceed gRPC's default
// 4 MiB message limit.
func TestLargeBundle(t *testing.T) {
	const size = 6 << 20
	dir := t.TempDir()
	big := strings.Repeat("0123456789abcdef", size/16)
	writeBundle(t, dir, bundleSpec{pkg: "huge", version: "1.0.0", channels: []string{"stable"}, extra: map[string]string{
		"huge-data_v1_configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: huge-data\ndata:\n  blob: " + big + "\n",
	}})
	c := loadDir(t, dir)
	if c.Package("huge") == nil {
		t.Fatalf("fixture not loaded: %v", c.Problems)
	}
	conn := startServer(t, catalogd.NewHolder(c))
	cl := catalogv1.NewCatalogServiceClient(conn)

	b, err := cl.GetBundle(context.Background(), &catalogv1.GetBundleRequest{Package: "huge", Name: "huge.v1.0.0"},
		grpc.MaxCallRecvMsgSize(catalogd.ClientMaxRecvMsgSize))
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, m := range b.Manifests {
		if m.Kind == "ConfigMap" && m.Name == "huge-data" {
			found = true
			if len(m.Json) < size || !strings.Contains(m.Json, big) {
				t.Errorf("ConfigMap JSON has %d bytes, want the %d-byte blob", len(m.Json), size)
			}
		}
	}
	if !found {
		t.Fatal("the ConfigMap is missing")
	}

	// With gRPC's default limit the same call fails, which is why clients raise it.
	_, err = cl.GetBundle(context.Background(), &catalogv1.GetBundleRequest{Package: "huge", Name: "huge.v1.0.0"},
		grpc.MaxCallRecvMsgSize(4<<20))
	checkCode(t, err, codes.ResourceExhausted)
}
