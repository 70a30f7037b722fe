package catalogd_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/test/bufconn"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/internal/publish"
	"github.com/ferrydev/ferry/internal/publish/publishtest"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// waitFor polls cond until it holds or a minute passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, time.Minute, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
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
		tick := time.NewTicker(50 * time.Millisecond) // the trickle's pace
		defer tick.Stop()
		for range tick.C {
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
	return onlySample(t, m, name).GetCounter().GetValue()
}

// TestConnectionOptions: the gRPC server options that bound connections
// are in force. Each case fails without its option.
func TestConnectionOptions(t *testing.T) {
	tests := []struct {
		name   string
		limits func(*catalogd.Limits)
		run    func(t *testing.T, addr string, m *catalogd.Metrics)
	}{
		{"a second call on a connection waits for the first to end", func(l *catalogd.Limits) { l.MaxConcurrentStreams = 1 }, testStreamLimit},
		{"pinging faster than keepalive-min-time during a call", func(l *catalogd.Limits) {}, func(t *testing.T, addr string, _ *catalogd.Metrics) {
			c := dialH2(t, addr)
			c.call(t, 1, catalogv1.CatalogService_Watch_FullMethodName)
			c.waitData(t, 1)
			for range 10 * maxPingStrikes {
				if !c.ping(t) {
					break // the server closed the connection already
				}
			}
			c.wantTooManyPings(t)
		}},
		{"pinging at keepalive-min-time during a call", func(l *catalogd.Limits) { l.KeepaliveMinTime = 100 * time.Millisecond }, func(t *testing.T, addr string, _ *catalogd.Metrics) {
			c := dialH2(t, addr)
			c.call(t, 1, catalogv1.CatalogService_Watch_FullMethodName)
			c.waitData(t, 1)
			// Without the option, the server's 5-minute default strikes
			// from the second ping on and sends GOAWAY before the last ack.
			pace := time.NewTicker(250 * time.Millisecond) // the pace of the pings, not a wait for an event
			defer pace.Stop()
			for i := range maxPingStrikes + 3 {
				if i > 0 {
					<-pace.C
				}
				c.ping(t)
				c.waitPingAck(t)
			}
		}},
		{"pinging without a call", func(l *catalogd.Limits) { l.KeepaliveMinTime = 100 * time.Millisecond }, func(t *testing.T, addr string, _ *catalogd.Metrics) {
			c := dialH2(t, addr)
			// Slower than keepalive-min-time: only the missing call is wrong.
			pace := time.NewTicker(250 * time.Millisecond) // the pace of the pings
			defer pace.Stop()
			for i := range maxPingStrikes + 3 {
				if i > 0 {
					<-pace.C
				}
				if !c.ping(t) {
					break // the server closed the connection already
				}
			}
			c.wantTooManyPings(t)
		}},
		{"a peer that does not answer pings is closed", func(l *catalogd.Limits) {
			l.KeepaliveTime = time.Second // gRPC's shortest
			l.KeepaliveTimeout = 200 * time.Millisecond
		}, func(t *testing.T, addr string, _ *catalogd.Metrics) {
			c := dialH2(t, addr)
			c.call(t, 1, catalogv1.CatalogService_Watch_FullMethodName)
			c.waitData(t, 1)
			c.until(t, "the server's ping", func(f http2.Frame) bool {
				p, ok := f.(*http2.PingFrame)
				return ok && !p.IsAck()
			})
			// Well before gRPC's default timeout of 20s.
			if err := c.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			c.wantClosed(t)
		}},
		{"an idle connection is closed", func(l *catalogd.Limits) { l.MaxConnectionIdle = 200 * time.Millisecond }, func(t *testing.T, addr string, m *catalogd.Metrics) {
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := catalogv1.NewCatalogServiceClient(conn).GetCatalogInfo(ctx, &catalogv1.GetCatalogInfoRequest{}); err != nil {
				t.Fatal(err)
			}
			if !conn.WaitForStateChange(ctx, connectivity.Ready) {
				t.Fatal("the idle connection is still open after 20s")
			}
			if s := conn.GetState(); s != connectivity.Idle && s != connectivity.TransientFailure {
				t.Errorf("client connection %s after the server closed it", s)
			}
			waitFor(t, "the server to close the connection", func() bool { return gaugeValue(t, m, "ferry_catalogd_grpc_connections") == 0 })
		}},
		{"a connection silent during the handshake is closed", func(l *catalogd.Limits) { l.HandshakeTimeout = 200 * time.Millisecond }, func(t *testing.T, addr string, m *catalogd.Metrics) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
				t.Fatal(err)
			}
			// The server's SETTINGS arrive, then the end of the connection.
			if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("the silent connection is still open: %v", err)
			}
			waitFor(t, "the connection's slot to be released", func() bool { return gaugeValue(t, m, "ferry_catalogd_grpc_connections") == 0 })
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			limits := catalogd.DefaultLimits()
			tc.limits(&limits)
			m := catalogd.NewMetrics()
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := catalogd.NewServer(catalogd.NewHolder(sampleCatalog(t)), catalogd.WithLimits(limits), catalogd.WithMetrics(m))
			done := make(chan error, 1)
			go func() { done <- srv.Serve(lis) }()
			t.Cleanup(func() {
				srv.GRPC().Stop()
				if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
					t.Errorf("serve: %v", err)
				}
			})
			tc.run(t, lis.Addr().String(), m)
		})
	}
}

// maxPingStrikes is how many pings against the policy gRPC's server
// tolerates before it sends GOAWAY; a ping right after the server sent
// headers or data never counts.
const maxPingStrikes = 2

// testStreamLimit: with MaxConcurrentStreams=1 the server announces the
// limit and refuses a second stream; gRPC's client then sends a second call
// only after the first ended.
func testStreamLimit(t *testing.T, addr string, _ *catalogd.Metrics) {
	c := dialH2(t, addr)
	if got, ok := c.settings.Value(http2.SettingMaxConcurrentStreams); !ok || got != 1 {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS %d (announced: %t), want 1", got, ok)
	}
	c.call(t, 1, catalogv1.CatalogService_Watch_FullMethodName)
	c.waitData(t, 1)
	c.call(t, 3, catalogv1.CatalogService_GetCatalogInfo_FullMethodName)
	c.until(t, "the second stream to be refused", func(f http2.Frame) bool {
		if f.Header().StreamID != 3 {
			return false
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.ErrCode == http2.ErrCodeRefusedStream {
			return true
		}
		t.Fatalf("the second stream was answered: %v", f)
		return false
	})

	// gRPC's client: the second call is begun while the first is open, and
	// its headers go out only after the first ended.
	events := &eventLog{begun: make(chan struct{})}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStatsHandler(events))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := catalogv1.NewCatalogServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	watchCtx, endWatch := context.WithCancel(ctx)
	defer endWatch()
	watch, err := client.Watch(watchCtx, &catalogv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := client.GetCatalogInfo(ctx, &catalogv1.GetCatalogInfoRequest{})
		done <- err
	}()
	<-events.begun
	events.add("Watch ended")
	endWatch()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []string{"Watch ended", "GetCatalogInfo headers sent"}
	if got := events.list(); !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// eventLog is a client stats handler that records when GetCatalogInfo's
// headers are sent and signals when its call begins.
type eventLog struct {
	mu     sync.Mutex
	events []string
	begun  chan struct{}
	once   sync.Once
}

func (e *eventLog) add(ev string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, ev)
}

func (e *eventLog) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.events)
}

func (e *eventLog) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if info.FullMethodName == catalogv1.CatalogService_GetCatalogInfo_FullMethodName {
		e.once.Do(func() { close(e.begun) })
	}
	return ctx
}

func (e *eventLog) HandleRPC(_ context.Context, s stats.RPCStats) {
	if h, ok := s.(*stats.OutHeader); ok && h.FullMethod == catalogv1.CatalogService_GetCatalogInfo_FullMethodName {
		e.add("GetCatalogInfo headers sent")
	}
}

func (*eventLog) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (*eventLog) HandleConn(context.Context, stats.ConnStats)                       {}

// h2Conn is a raw HTTP/2 connection to catalogd, for what gRPC's client
// never does: ping at will, open streams beyond the server's limit.
type h2Conn struct {
	conn     net.Conn
	fr       *http2.Framer
	hbuf     bytes.Buffer
	enc      *hpack.Encoder
	settings *http2.SettingsFrame
	pings    uint64
}

// dialH2 connects, exchanges the preface and settings and returns the
// connection with the server's settings.
func dialH2(t *testing.T, addr string) *h2Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	c := &h2Conn{conn: conn, fr: http2.NewFramer(conn, conn)}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	c.until(t, "the server's settings", func(f http2.Frame) bool {
		s, ok := f.(*http2.SettingsFrame)
		if ok && !s.IsAck() {
			c.settings = s
		}
		return ok && !s.IsAck()
	})
	return c
}

// call opens stream id to method with an empty request, half-closed.
func (c *h2Conn) call(t *testing.T, id uint32, method string) {
	t.Helper()
	c.hbuf.Reset()
	for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", method}, {":authority", "catalogd"},
		{"content-type", "application/grpc"}, {"te", "trailers"}} {
		if err := c.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteData(id, true, make([]byte, 5)); err != nil { // an empty message
		t.Fatal(err)
	}
}

// ping sends a ping; false if the connection is closed.
func (c *h2Conn) ping(t *testing.T) bool {
	t.Helper()
	c.pings++
	var data [8]byte
	binary.BigEndian.PutUint64(data[:], c.pings)
	if err := c.fr.WritePing(false, data); err != nil {
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			return false
		}
		t.Fatal(err)
	}
	return true
}

// waitData waits for a DATA frame on stream id.
func (c *h2Conn) waitData(t *testing.T, id uint32) {
	t.Helper()
	c.until(t, "a message on the call", func(f http2.Frame) bool {
		_, ok := f.(*http2.DataFrame)
		return ok && f.Header().StreamID == id
	})
}

// waitPingAck waits for the ack of the last ping; a GOAWAY fails the test.
func (c *h2Conn) waitPingAck(t *testing.T) {
	t.Helper()
	c.until(t, fmt.Sprintf("the ack of ping %d", c.pings), func(f http2.Frame) bool {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			t.Fatalf("GOAWAY %s %q after ping %d", g.ErrCode, g.DebugData(), c.pings)
		}
		p, ok := f.(*http2.PingFrame)
		return ok && p.IsAck() && binary.BigEndian.Uint64(p.Data[:]) == c.pings
	})
}

// wantTooManyPings waits for GOAWAY(ENHANCE_YOUR_CALM, too_many_pings) and
// the end of the connection.
func (c *h2Conn) wantTooManyPings(t *testing.T) {
	t.Helper()
	c.until(t, "GOAWAY", func(f http2.Frame) bool {
		g, ok := f.(*http2.GoAwayFrame)
		if ok && (g.ErrCode != http2.ErrCodeEnhanceYourCalm || string(g.DebugData()) != "too_many_pings") {
			t.Fatalf("GOAWAY %s %q, want ENHANCE_YOUR_CALM too_many_pings", g.ErrCode, g.DebugData())
		}
		return ok
	})
	c.wantClosed(t)
}

// wantClosed reads until the server closes the connection.
func (c *h2Conn) wantClosed(t *testing.T) {
	t.Helper()
	for {
		if _, err := c.fr.ReadFrame(); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				return
			}
			t.Fatalf("the connection is not closed: %v", err)
		}
	}
}

// until reads frames, acknowledging the server's settings, until match
// returns true.
func (c *h2Conn) until(t *testing.T, what string, match func(http2.Frame) bool) {
	t.Helper()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			if err := c.fr.WriteSettingsAck(); err != nil {
				t.Fatal(err)
			}
		}
		if match(f) {
			return
		}
	}
}
