package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferrydev/ferry/internal/publish"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// memoryLimit is the GOMEMLIMIT the adversarial tests run catalogd with.
const memoryLimit = "256MiB"

// buildCatalogd builds the catalogd binary into a temporary directory.
func buildCatalogd(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs catalogd")
	}
	bin := filepath.Join(t.TempDir(), "catalogd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer is a bytes.Buffer safe for a child's output and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// served is a catalogd child process with its metrics endpoint.
type served struct {
	cmd           *exec.Cmd
	addr, metrics string
	log           *syncBuffer
	conn          *grpc.ClientConn
}

// startCatalogd runs bin serve with args under GOMEMLIMIT and waits until
// it is healthy.
func startCatalogd(t *testing.T, bin string, args ...string) *served {
	t.Helper()
	return startCatalogdWith(t, bin, memoryLimit, args...)
}

// startCatalogdWith is startCatalogd with another GOMEMLIMIT.
func startCatalogdWith(t *testing.T, bin, memLimit string, args ...string) *served {
	t.Helper()
	s := &served{addr: freeAddr(t), metrics: freeAddr(t), log: &syncBuffer{}}
	s.cmd = exec.Command(bin, append([]string{"serve", "--listen", s.addr, "--metrics-listen", s.metrics, "--log-format", "json"}, args...)...)
	s.cmd.Env = append(os.Environ(), "GOMEMLIMIT="+memLimit)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		if t.Failed() {
			t.Logf("catalogd log:\n%s", s.log.String())
		}
	})
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s.conn = conn
	waitUntil(t, "catalogd to become healthy", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
	return s
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, time.Minute, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// metric scrapes /metrics and returns the value of the sample whose name
// and labels are exactly series, e.g. `x_total{reason="missing"}`.
func (s *served) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && name == series {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no sample %s in /metrics", series)
	return 0
}

// peakRSS is the child's peak resident set size (VmHWM), in bytes.
func (s *served) peakRSS(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// catalogDigest is the digest catalogd serves.
func (s *served) catalogDigest(t *testing.T) string {
	t.Helper()
	info, err := catalogv1.NewCatalogServiceClient(s.conn).GetCatalogInfo(context.Background(), &catalogv1.GetCatalogInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return info.GetDigest()
}

// checkServed asserts that every package of the sample catalog answers.
func (s *served) checkServed(t *testing.T) {
	t.Helper()
	client := catalogv1.NewCatalogServiceClient(s.conn)
	for _, pkg := range []string{"lighthouse-operator", "signal-store", "beacon-metrics"} {
		if _, err := client.GetPackage(context.Background(), &catalogv1.GetPackageRequest{Name: pkg}); err != nil {
			t.Errorf("%s: %v", pkg, err)
		}
	}
}

// Bounds of the memory tests. catalogd serving the sample catalog peaks
// at about 40 MiB; what the attacks may add is what catalogd buffers by
// design: 8 uploads of 1 MiB and the fixed flow-control windows (2 MiB a
// connection). One preallocated 64 MiB archive, or one 60 MiB request, would
// pass the heap bound alone; eight of them would pass the RSS bound three
// times over.
const (
	maxHeapDuringAttack = 64 << 20
	maxPeakRSS          = 160 << 20
)

// TestStalledPublishesStayBounded: eight uploads that announce 64 MiB each,
// send 1 MiB and stall make catalogd hold what arrived, not what was
// announced.
func TestStalledPublishesStayBounded(t *testing.T) {
	bin := buildCatalogd(t)
	tokens := writeTokens(t, testToken+"\n")
	s := startCatalogd(t, bin, "--data-dir", t.TempDir(), "--token-file", tokens, "--max-concurrent-publishes", "8")
	digest := s.catalogDigest(t)
	ctx, cancel := context.WithCancel(publish.WithToken(context.Background(), testToken))
	defer cancel()
	const streams = 8
	data := make([]byte, publish.ChunkSize)
	_, _ = rand.Read(data)
	var results []catalogv1.CatalogService_PublishClient
	for range streams {
		conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		stream, err := catalogv1.NewCatalogServiceClient(conn).Publish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&catalogv1.PublishRequest{Item: &catalogv1.PublishRequest_Header{Header: &catalogv1.PublishHeader{
			Size: publish.MaxArchiveBytes, Sha256: strings.Repeat("0", 64)}}}); err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&catalogv1.PublishRequest{Item: &catalogv1.PublishRequest_Chunk{Chunk: data}}); err != nil {
			t.Fatal(err)
		}
		results = append(results, stream)
	}
	waitUntil(t, "catalogd to hold every first chunk", func() bool {
		return s.metric(t, "ferry_catalogd_publish_upload_bytes") == streams*publish.ChunkSize
	})
	heap := s.metric(t, "go_memstats_heap_alloc_bytes")
	rss := s.peakRSS(t)
	t.Logf("8 stalled uploads of 64 MiB announced: heap %.1f MiB, peak RSS %.1f MiB", heap/(1<<20), float64(rss)/(1<<20))
	if heap > maxHeapDuringAttack {
		t.Errorf("heap %.1f MiB, bound %d MiB", heap/(1<<20), maxHeapDuringAttack>>20)
	}
	if rss > maxPeakRSS {
		t.Errorf("peak RSS %.1f MiB, bound %d MiB", float64(rss)/(1<<20), maxPeakRSS>>20)
	}
	if got := s.catalogDigest(t); got != digest {
		t.Errorf("catalog digest %s, before %s", got, digest)
	}
	s.checkServed(t)
	// The uploads end cleanly when their clients give up.
	cancel()
	for _, r := range results {
		if err := r.RecvMsg(new(catalogv1.PublishResponse)); status.Code(err) != codes.Canceled {
			t.Errorf("stalled upload: %v", err)
		}
	}
	waitUntil(t, "the uploads to be released", func() bool {
		return s.metric(t, "ferry_catalogd_publish_upload_bytes") == 0 && s.metric(t, "ferry_catalogd_publish_uploads_in_progress") == 0
	})
}

// TestLargeReadRequestsRefused: eight concurrent unauthenticated 60 MiB
// read requests are refused by size without being buffered.
func TestLargeReadRequestsRefused(t *testing.T) {
	bin := buildCatalogd(t)
	s := startCatalogd(t, bin)
	digest := s.catalogDigest(t)
	const clients = 8
	// One encoded GetPackageRequest with a 60 MiB name, sent as is by every
	// client (the raw codec), so the test holds it once.
	req := protowire.AppendTag(nil, 1, protowire.BytesType)
	req = protowire.AppendVarint(req, 60<<20)
	req = append(req, bytes.Repeat([]byte("x"), 60<<20)...)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var resp []byte
			errs[i] = conn.Invoke(ctx, catalogv1.CatalogService_GetPackage_FullMethodName, req, &resp, grpc.ForceCodecV2(rawCodec{}))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), "larger than max") {
			t.Errorf("request %d: %v", i, err)
		}
	}
	rss := s.peakRSS(t)
	t.Logf("8 requests of 60 MiB: peak RSS %.1f MiB", float64(rss)/(1<<20))
	if rss > maxPeakRSS {
		t.Errorf("peak RSS %.1f MiB, bound %d MiB", float64(rss)/(1<<20), maxPeakRSS>>20)
	}
	if got := s.catalogDigest(t); got != digest {
		t.Errorf("catalog digest %s, before %s", got, digest)
	}
	s.checkServed(t)
}

// rawCodec sends and receives messages as bytes, unencoded.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// TestTokenRevocation: a token removed from the file is refused at the next
// call; a deleted file revokes every token, loudly; a file open to others
// is reported at start.
func TestTokenRevocation(t *testing.T) {
	bin := buildCatalogd(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	const scoped = "scoped-token-0123456789"
	write := func(content string) {
		t.Helper()
		tmp := tokens + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(tmp, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, tokens); err != nil {
			t.Fatal(err)
		}
	}
	write(scoped + " lighthouse-operator\n" + testToken + "\n")
	s := startCatalogd(t, bin, "--data-dir", t.TempDir(), "--token-file", tokens)
	if !strings.Contains(s.log.String(), "the tokens file is readable or writable by group or others") ||
		s.metric(t, "ferry_catalogd_token_file_insecure") != 1 || s.metric(t, "ferry_catalogd_tokens_loaded") != 2 {
		t.Fatalf("open permissions not reported:\n%s", s.log.String())
	}
	client := catalogv1.NewCatalogServiceClient(s.conn)
	deprecate := func(token, pkg string) error {
		_, err := client.Deprecate(publish.WithToken(context.Background(), token), &catalogv1.DeprecateRequest{Package: pkg, Channel: "fast", Message: "use stable"})
		return err
	}
	if err := deprecate(testToken, "lighthouse-operator"); err != nil {
		t.Fatal(err)
	}
	digest := s.catalogDigest(t)

	steps := []struct {
		name         string
		change       func()
		token        string
		code         codes.Code
		tokensLoaded float64
	}{
		{"token removed", func() { write(scoped + " lighthouse-operator\n") }, testToken, codes.PermissionDenied, 1},
		{"other token still valid", func() {}, scoped, codes.OK, 1},
		{"file deleted", func() {
			if err := os.Remove(tokens); err != nil {
				t.Fatal(err)
			}
		}, scoped, codes.PermissionDenied, 0},
		{"file invalid", func() { write(scoped + "\nshort\n") }, scoped, codes.PermissionDenied, 0},
	}
	for _, st := range steps {
		st.change()
		err := deprecate(st.token, "lighthouse-operator")
		if status.Code(err) != st.code {
			t.Fatalf("%s: got %v, want %s", st.name, err, st.code)
		}
		if st.code != codes.OK && !strings.Contains(status.Convert(err).Message(), "the token is not valid") {
			t.Errorf("%s: %v", st.name, err)
		}
		if got := s.metric(t, "ferry_catalogd_tokens_loaded"); got != st.tokensLoaded {
			t.Errorf("%s: tokens_loaded %v, want %v", st.name, got, st.tokensLoaded)
		}
		if st.code != codes.OK {
			if got := s.catalogDigest(t); got != digest {
				t.Errorf("%s: a refused call changed the catalog", st.name)
			}
		}
		digest = s.catalogDigest(t)
	}
	if s.metric(t, `ferry_catalogd_token_file_errors_total{reason="missing"}`) != 1 ||
		s.metric(t, `ferry_catalogd_token_file_errors_total{reason="invalid"}`) != 1 {
		t.Error("token file errors not counted")
	}
	log := s.log.String()
	for _, want := range []string{
		`"msg":"tokens file unusable: every token is revoked until it is fixed","file":"` + tokens + `","reason":"missing"`,
		`"msg":"tokens file unusable: every token is revoked until it is fixed","file":"` + tokens + `","reason":"invalid"`,
		`"level":"error"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	s.checkServed(t)
}
