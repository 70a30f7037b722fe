package catalogd_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/internal/publish"
	"github.com/ferrydev/ferry/internal/publish/publishtest"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// waitFor polls cond until it holds or a minute passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func headerMsg(size int64) *catalogv1.PublishRequest {
	return &catalogv1.PublishRequest{Item: &catalogv1.PublishRequest_Header{Header: &catalogv1.PublishHeader{Size: size, Sha256: strings.Repeat("0", 64)}}}
}

// TestPublishStalledUploadIsCutOff: an upload that stops sending loses its
// turn after the idle timeout, and one that trickles is cut off at the
// upload timeout; a publish waiting for the turn then goes through.
func TestPublishStalledUploadIsCutOff(t *testing.T) {
	limits := catalogd.DefaultLimits()
	limits.MaxConcurrentPublishes = 1
	limits.PublishIdleTimeout = time.Second
	env := startPublishingWith(t, t.TempDir(), limits)
	ctx, cancel := context.WithTimeout(publish.WithToken(context.Background(), adminToken), time.Minute)
	defer cancel()

	stalled, err := env.client.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stalled.Send(headerMsg(publish.MaxArchiveBytes)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stalled upload to hold the turn", func() bool {
		return gaugeValue(t, env.metrics, "ferry_catalogd_publish_uploads_in_progress") == 1
	})
	// This publish waits for the turn the stalled upload holds.
	done := make(chan error, 1)
	go func() {
		dir := writeBundle(t, t.TempDir(), bundleSpec{pkg: "harbor-operator", version: "0.1.0", channels: []string{"alpha"}})
		_, err := upload(t, env.client, adminToken, dir)
		done <- err
	}()
	// Wait for the answer without closing the stream.
	err = stalled.RecvMsg(new(catalogv1.PublishResponse))
	wantCode(t, err, codes.DeadlineExceeded, "nothing received for 1s")
	if err := <-done; err != nil {
		t.Fatalf("the waiting publish: %v", err)
	}
	if env.holder.Catalog().Package("harbor-operator") == nil {
		t.Fatal("harbor-operator is not served")
	}

	// A trickle: one byte every 50ms is never idle, but never done either.
	limits.PublishIdleTimeout = 2 * time.Second
	limits.PublishTimeout = 2 * time.Second
	env = startPublishingWith(t, t.TempDir(), limits)
	trickle, err := env.client.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := trickle.Send(headerMsg(1 << 20)); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			time.Sleep(50 * time.Millisecond)
			if trickle.Send(&catalogv1.PublishRequest{Item: &catalogv1.PublishRequest_Chunk{Chunk: []byte{0}}}) != nil {
				return
			}
		}
	}()
	start := time.Now()
	err = trickle.RecvMsg(new(catalogv1.PublishResponse))
	wantCode(t, err, codes.DeadlineExceeded, "the upload took longer than 2s")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cut off after %s", d)
	}
	waitFor(t, "every turn to be given back", func() bool {
		return gaugeValue(t, env.metrics, "ferry_catalogd_publish_uploads_in_progress") == 0 &&
			gaugeValue(t, env.metrics, "ferry_catalogd_publish_upload_bytes") == 0
	})
}

// TestRequestSizeLimit: read requests above MaxRecvMsgSize are refused;
// Publish chunks fit.
func TestRequestSizeLimit(t *testing.T) {
	env := startPublishing(t, t.TempDir())
	_, err := env.client.GetPackage(context.Background(), &catalogv1.GetPackageRequest{Name: strings.Repeat("x", catalogd.MaxRecvMsgSize+1)})
	wantCode(t, err, codes.ResourceExhausted, "larger than max")
	// A bundle of several chunks is published.
	noise := make([]byte, 3<<20)
	_, _ = rand.Read(noise)
	dir := writeBundle(t, t.TempDir(), bundleSpec{pkg: "big-operator", version: "1.0.0", channels: []string{"stable"}, extra: map[string]string{
		"blob.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: blob\ndata:\n  blob: " + base64.StdEncoding.EncodeToString(noise) + "\n",
	}})
	if _, err := upload(t, env.client, adminToken, dir); err != nil {
		t.Fatal(err)
	}
	// The catalog answers as before.
	if _, err := env.client.GetPackage(context.Background(), &catalogv1.GetPackageRequest{Name: "big-operator"}); err != nil {
		t.Fatal(err)
	}
}

// TestDeprecateLimits: deprecation messages are bounded in length and
// content, and so is the number of deprecations.
func TestDeprecateLimits(t *testing.T) {
	limits := catalogd.DefaultLimits()
	limits.MaxDeprecations = 2
	env := startPublishingWith(t, t.TempDir(), limits)
	ctx := publish.WithToken(context.Background(), adminToken)
	tests := []struct {
		name string
		req  *catalogv1.DeprecateRequest
		code codes.Code
		want string
	}{
		{"too long", &catalogv1.DeprecateRequest{Package: "lighthouse-operator", Message: strings.Repeat("x", limits.MaxDeprecationMessage+1)},
			codes.InvalidArgument, "message is 1025 bytes; at most 1024 are accepted"},
		{"terminal escape", &catalogv1.DeprecateRequest{Package: "lighthouse-operator", Message: "use 2.0 \x1b[2J"},
			codes.InvalidArgument, "message: control character U+001B at byte 8"},
		{"bidi override", &catalogv1.DeprecateRequest{Package: "lighthouse-operator", Message: "use \u202e0.2"},
			codes.InvalidArgument, "control character U+202E at byte 4"},
		{"first", &catalogv1.DeprecateRequest{Package: "lighthouse-operator", Message: "retired;\n\tuse beacon-metrics"}, codes.OK, ""},
		{"second", &catalogv1.DeprecateRequest{Package: "lighthouse-operator", Channel: "fast", Message: "use stable"}, codes.OK, ""},
		{"third", &catalogv1.DeprecateRequest{Package: "lighthouse-operator", Version: "1.1.0", Message: "use 1.1.1"},
			codes.ResourceExhausted, "2 deprecations are stored, the most this server keeps"},
		{"replacing one", &catalogv1.DeprecateRequest{Package: "lighthouse-operator", Channel: "fast", Message: "use stable, really"}, codes.OK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := env.holder.Catalog().Digest
			_, err := env.client.Deprecate(ctx, tc.req)
			if tc.code == codes.OK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, tc.code, tc.want)
			if env.holder.Catalog().Digest != before {
				t.Error("a refused deprecation changed the catalog")
			}
		})
	}
}

// TestPublishHiddenHugeEntry: an archive whose hidden entry claims 16 GiB
// of zeros is refused at that entry's header; nothing changes.
func TestPublishHiddenHugeEntry(t *testing.T) {
	env := startPublishing(t, t.TempDir())
	before := env.holder.Catalog().Digest
	archive := publishtest.ZeroEntryTarGz(t, "bundle/manifests/.git/objects/pack", 16<<30)
	ctx, cancel := context.WithTimeout(publish.WithToken(context.Background(), adminToken), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := publish.Upload(ctx, env.client, archive, &catalogv1.PublishHeader{}, nil)
	wantCode(t, err, codes.ResourceExhausted,
		`archive entry "bundle/manifests/.git/objects/pack" declares 17179869184 bytes: the entries would total more than 67108864 bytes`)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("refused after %s", d)
	}
	if env.holder.Catalog().Digest != before {
		t.Error("the catalog changed")
	}
	if gaugeValue(t, env.metrics, "ferry_catalogd_publish_upload_bytes") != 0 {
		t.Error("the upload is still held")
	}
}

// TestConnectionLimit: at most MaxConnections are served at once; the next
// one is served when one of them closes.
func TestConnectionLimit(t *testing.T) {
	limits := catalogd.DefaultLimits()
	limits.MaxConnections = 2
	m := catalogd.NewMetrics()
	lis := bufconn.Listen(1 << 20)
	srv := catalogd.NewServer(catalogd.NewHolder(sampleCatalog(t)), catalogd.WithLimits(limits), catalogd.WithMetrics(m))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.GRPC().Stop)
	dial := func() *grpc.ClientConn {
		conn, err := grpc.NewClient("passthrough:///bufconn",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var conns []*grpc.ClientConn
	for range 2 {
		conn := dial()
		watch, err := catalogv1.NewCatalogServiceClient(conn).Watch(ctx, &catalogv1.WatchRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := watch.Recv(); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	waitFor(t, "the limit to be reached", func() bool {
		return gaugeValue(t, m, "ferry_catalogd_grpc_connections") == 2 &&
			counterValue(t, m, "ferry_catalogd_grpc_connection_limit_reached_total") == 1
	})
	done := make(chan error, 1)
	go func() {
		_, err := catalogv1.NewCatalogServiceClient(dial()).GetCatalogInfo(ctx, &catalogv1.GetCatalogInfoRequest{})
		done <- err
	}()
	_ = conns[0].Close()
	if err := <-done; err != nil {
		t.Fatalf("the third connection: %v", err)
	}
	if got := gaugeValue(t, m, "ferry_catalogd_grpc_connections"); got > 2 {
		t.Errorf("%v connections open", got)
	}
}

// counterValue reads one gathered counter without labels.
func counterValue(t *testing.T, m *catalogd.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
