package catalogd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
)

// sampleCatalog loads the embedded sample catalog.
func sampleCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Load(context.Background(), []catalog.Source{{Name: "bundles", FS: bundles.FS}})
	if err != nil {
		t.Fatalf("loading the sample catalog: %v", err)
	}
	return c
}

// startServer serves the holder on an in-memory listener and returns a client
// connection to it. Both are closed when the test ends.
func startServer(t testing.TB, h *catalogd.Holder, opts ...catalogd.ServerOption) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := catalogd.NewServer(h, opts...)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(catalogd.ClientMaxRecvMsgSize)),
	)
	if err != nil {
		t.Fatalf("dialing bufconn: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.GRPC().Stop()
		if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("serve: %v", err)
		}
	})
	return conn
}

// recvAll reads a server stream to its end.
func recvAll[T any](stream interface{ Recv() (*T, error) }) ([]*T, error) {
	var out []*T
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

// bundleSpec describes a registry+v1 bundle directory written by writeBundle.
type bundleSpec struct {
	pkg, version   string
	channels       []string
	defaultChannel string
	replaces       string
	skips          []string
	skipRange      string
	// extra manifests, file name → YAML or JSON content.
	extra map[string]string
}

func (b bundleSpec) csvName() string { return b.pkg + ".v" + b.version }

// writeBundle writes <root>/<pkg>/<version>/{manifests,metadata} and returns the bundle directory.
func writeBundle(t testing.TB, root string, b bundleSpec) string {
	t.Helper()
	dir := filepath.Join(root, b.pkg, b.version)
	def := b.defaultChannel
	if def == "" {
		def = b.channels[0]
	}
	ann := fmt.Sprintf(`annotations:
  operators.operatorframework.io.bundle.mediatype.v1: registry+v1
  operators.operatorframework.io.bundle.manifests.v1: manifests/
  operators.operatorframework.io.bundle.metadata.v1: metadata/
  operators.operatorframework.io.bundle.package.v1: %s
  operators.operatorframework.io.bundle.channels.v1: %s
  operators.operatorframework.io.bundle.channel.default.v1: %s
`, b.pkg, strings.Join(b.channels, ","), def)
	var csv strings.Builder
	fmt.Fprintf(&csv, "apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: %s\n", b.csvName())
	if b.skipRange != "" {
		fmt.Fprintf(&csv, "  annotations:\n    olm.skipRange: %q\n", b.skipRange)
	}
	fmt.Fprintf(&csv, "spec:\n  version: %s\n  displayName: %s\n", b.version, b.pkg)
	if b.replaces != "" {
		fmt.Fprintf(&csv, "  replaces: %s\n", b.replaces)
	}
	if len(b.skips) > 0 {
		csv.WriteString("  skips:\n")
		for _, s := range b.skips {
			fmt.Fprintf(&csv, "  - %s\n", s)
		}
	}
	csv.WriteString("  installModes:\n  - type: AllNamespaces\n    supported: true\n")
	writeFile(t, filepath.Join(dir, "metadata", "annotations.yaml"), ann)
	writeFile(t, filepath.Join(dir, "manifests", b.pkg+".clusterserviceversion.yaml"), csv.String())
	for name, content := range b.extra {
		writeFile(t, filepath.Join(dir, "manifests", name), content)
	}
	return dir
}

func writeFile(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// loadDir loads a catalog directory.
func loadDir(t testing.TB, dir string, opts ...catalog.Option) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Load(context.Background(), []catalog.Source{catalog.DirSource(dir)}, opts...)
	if err != nil {
		t.Fatalf("loading %s: %v", dir, err)
	}
	return c
}
