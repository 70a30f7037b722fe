package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferrydev/ferry/proto/api"
)

const maxRecv = 64 << 20

// startResult is one start of catalogd.
type startResult struct {
	ready     time.Duration // process start → first complete ListPackages answer
	attempts  int
	rssReady  int64 // VmRSS when ready, bytes
	hwmReady  int64 // VmHWM when ready, bytes
	packages  int
	resident  int64 // bytes of the catalog files in the page cache before the start
	catalogSz int64
}

// result is everything measured on one catalog.
type result struct {
	scale              int
	dir                string
	files              int
	size               int64
	packages, channels int
	bundlesAPI         int // entries of ListBundles
	first, second      []startResult
	listBundles        []time.Duration
	// listBundlesRaw is the same stream until the client has every
	// entry's bytes, not decoded.
	listBundlesRaw   []time.Duration
	listBundlesBytes int64
	heads            int
	headLat          []time.Duration
	// headRawLat is GetBundle over the heads again, until the client has
	// the answer's bytes, without decoding them (rawCodec).
	headRawLat      []time.Duration
	headErrs        int
	headBytes       int64
	gbfcN, gbfcErrs int
	gbfcElapsed     time.Duration
	gbfcClients     int
	gbfcCPU         time.Duration   // catalogd CPU time (user+sys) during the GetBundleForChannel test
	gbfcLat         []time.Duration // each GetBundleForChannel request's latency in that test
	// gbfcRaw is the same test with clients that take each answer's bytes
	// without decoding them: what catalogd serves when its clients' decoding
	// does not share its two cores.
	gbfcRaw              tput
	defaultLat           []time.Duration
	defaultErrs, nGVKs   int
	hwmEnd, rssEnd       int64
	rssBusy              int64         // RSS right after the last serving request, before catalogd released memory
	memBusy              memBreakdown  // the same, broken down
	released             bool          // catalogd released memory after the serving tests
	memReady, memEnd     memBreakdown  // when ready (last start) and after the serving tests
	warmAfterReady       time.Duration // from ready until catalogd had kept the channel heads' answers
	cpuServe             time.Duration // catalogd CPU time during the serving phases
	cpuReadyFirst        time.Duration // catalogd CPU time (user+sys) at ready, median over first starts
	cpuReadySecond       time.Duration
	cpuReadyFirstSamples []time.Duration
	cpuReadySecondSample []time.Duration
	// chans are the catalog's channels and their heads.
	chans []channelRef
	// floor is the same GetBundle and GetBundleForChannel tests against
	// a bare gRPC server sending catalogd's answers from memory; nil when
	// not measured.
	floor *floorResult
}

// proc is a running catalogd.
type proc struct {
	cmd     *exec.Cmd
	addr    string
	metrics string // address of /metrics
	logPath string
	done    chan struct{}
	waitErr error
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startCatalogd(bin, dir, tmp string, n int, extra ...string) (*proc, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	maddr, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(tmp, fmt.Sprintf("catalogd-%d.log", n))
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// Bundles the catalog lists by image only are served without their
	// objects, as opm serve serves them: no registry is asked.
	cmd := exec.Command(bin, append([]string{"serve", "--listen", addr, "--catalog", dir, "--metrics-listen", maddr, "--log-level", "error", "--bundle-images=off"}, extra...)...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, addr: addr, metrics: maddr, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) logTail() string {
	data, _ := os.ReadFile(p.logPath)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

// stop sends SIGTERM and waits; after 15 s it kills the process.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// procStatus reads VmRSS and VmHWM of pid in bytes.
func procStatus(pid int) (rss, hwm int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// procCPU reads utime+stime of pid.
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// fields after the command: state(0) ... utime(11) stime(12)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecv)))
}

// listPackages reads the whole ListPackages stream.
func listPackages(ctx context.Context, c api.RegistryClient) ([]string, error) {
	s, err := c.ListPackages(ctx, &api.ListPackageRequest{})
	if err != nil {
		return nil, err
	}
	var names []string
	for i := 0; i < 1_000_000; i++ {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, err
		}
		names = append(names, m.GetName())
	}
	return nil, fmt.Errorf("ListPackages: too many answers")
}

// waitReady retries ListPackages every 10 ms, each attempt on a new
// connection so that gRPC's reconnect backoff does not delay the answer.
func waitReady(ctx context.Context, p *proc, started time.Time, limit time.Duration) (time.Duration, int, int, error) {
	deadline := started.Add(limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for attempt := 1; attempt <= int(limit/(10*time.Millisecond))+1; attempt++ {
		if p.exited() {
			return 0, attempt, 0, fmt.Errorf("catalogd exited: %w\n%s", p.waitErr, p.logTail())
		}
		conn, err := dial(p.addr)
		if err == nil {
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			names, err := listPackages(actx, api.NewRegistryClient(conn))
			cancel()
			conn.Close()
			if err == nil && len(names) > 0 {
				return time.Since(started), attempt, len(names), nil
			}
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return 0, attempt, 0, ctx.Err()
		case <-tick.C:
		}
	}
	return 0, 0, 0, fmt.Errorf("no ListPackages answer within %s\n%s", limit, p.logTail())
}

var startSeq atomic.Int64

// oneStart starts catalogd, waits for it and leaves it running.
func oneStart(ctx context.Context, c config, bin, dir, tmp string, cold bool) (*proc, startResult, time.Duration, error) {
	var sr startResult
	if cold {
		if _, err := evictPageCache(dir); err != nil {
			return nil, sr, 0, err
		}
	}
	sr.resident = residentBytes(dir)
	var extra []string
	if c.profileDir != "" {
		extra = append(extra, "--pprof")
	}
	p, err := startCatalogd(bin, dir, tmp, int(startSeq.Add(1)), extra...)
	if err != nil {
		return nil, sr, 0, err
	}
	started := time.Now()
	ready, attempts, pkgs, err := waitReady(ctx, p, started, c.startMax)
	if err != nil {
		p.stop()
		return nil, sr, 0, err
	}
	sr.ready, sr.attempts, sr.packages = ready, attempts, pkgs
	sr.rssReady, sr.hwmReady = procStatus(p.cmd.Process.Pid)
	return p, sr, procCPU(p.cmd.Process.Pid), nil
}

// measureCatalog does `repeat` first (page cache evicted) and second starts,
// then the serving measurements on the last second start; with floor, then
// the floor server's on the answers catalogd sent.
func measureCatalog(ctx context.Context, c config, bin, dir string, repeat int, tmp string, floor bool) (*result, error) {
	r := &result{dir: dir}
	r.files, r.size = treeSize(dir)
	var last *proc
	defer func() {
		if last != nil {
			last.stop()
		}
	}()
	for i := 0; i < repeat; i++ {
		for _, cold := range []bool{true, false} {
			if last != nil {
				last.stop()
				last = nil
			}
			p, sr, cpu, err := oneStart(ctx, c, bin, dir, tmp, cold)
			if err != nil {
				return nil, err
			}
			sr.catalogSz = r.size
			kind := "second"
			if cold {
				kind = "first"
				r.first = append(r.first, sr)
				r.cpuReadyFirstSamples = append(r.cpuReadyFirstSamples, cpu)
			} else {
				r.second = append(r.second, sr)
				r.cpuReadySecondSample = append(r.cpuReadySecondSample, cpu)
			}
			logf("  %s start: ready in %s (%d attempts), RSS %d MiB, peak %d MiB, %d MiB of the catalog in page cache before",
				kind, sr.ready.Round(time.Millisecond), sr.attempts, sr.rssReady>>20, sr.hwmReady>>20, sr.resident>>20)
			last = p
		}
	}
	r.cpuReadyFirst = medianDur(r.cpuReadyFirstSamples)
	r.cpuReadySecond = medianDur(r.cpuReadySecondSample)
	if err := serveMeasurements(ctx, c, last, r); err != nil {
		return nil, err
	}
	if !floor {
		return r, nil
	}
	answers := filepath.Join(tmp, "floor-answers")
	defer func() { _ = os.Remove(answers) }()
	n, size, err := captureAnswers(ctx, c, last, r.chans, answers)
	if err != nil {
		return nil, fmt.Errorf("capturing answers for the floor server: %w", err)
	}
	last.stop()
	last = nil
	logf("  floor server: a bare gRPC server sending the %d channel heads' answers (%d MB) from memory", n, size/1e6)
	if r.floor, err = measureFloor(ctx, c, r.chans, answers, tmp); err != nil {
		return nil, err
	}
	r.floor.answers, r.floor.bytes = n, size
	return r, nil
}

type channelRef struct{ pkg, channel, head, defaultCh string }

func serveMeasurements(ctx context.Context, c config, p *proc, r *result) error {
	pid := p.cmd.Process.Pid
	r.memReady = readMem(ctx, p)
	// The serving tests measure answers kept ready, as clients meet them
	// once catalogd has warmed the channel heads after its start.
	warmStart := time.Now()
	if !awaitWarm(ctx, p) {
		return fmt.Errorf("catalogd did not keep the channel heads' answers within %s", warmWait)
	}
	r.warmAfterReady = time.Since(warmStart)
	logf("  channel heads' answers kept %s after ready", r.warmAfterReady.Round(time.Millisecond))
	cpu0 := procCPU(pid)
	conn, err := dial(p.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	cl := api.NewRegistryClient(conn)

	// Channel heads from GetPackage.
	pctx, cancel := context.WithTimeout(ctx, c.phase)
	defer cancel()
	names, err := listPackages(pctx, cl)
	if err != nil {
		return err
	}
	r.packages = len(names)
	var chans []channelRef
	for _, n := range names {
		pk, err := cl.GetPackage(pctx, &api.GetPackageRequest{Name: n})
		if err != nil {
			return fmt.Errorf("GetPackage %s: %w", n, err)
		}
		for _, ch := range pk.GetChannels() {
			chans = append(chans, channelRef{pkg: n, channel: ch.GetName(), head: ch.GetCsvName(), defaultCh: pk.GetDefaultChannelName()})
		}
	}
	r.channels = len(chans)
	r.chans = chans

	// c. ListBundles, three times.
	for i := 0; i < 3; i++ {
		d, n, bytes, err := listBundlesDecoded(ctx, c, cl)
		if err != nil {
			return err
		}
		r.listBundles = append(r.listBundles, d)
		r.bundlesAPI, r.listBundlesBytes = n, bytes
	}
	// The same stream until the client has the entries' bytes: the
	// server's and the transport's part.
	for i := 0; i < 3; i++ {
		lctx, lcancel := context.WithTimeout(ctx, c.phase)
		start := time.Now()
		n, err := listBundlesRaw(lctx, conn)
		lcancel()
		if err != nil {
			return err
		}
		if n != r.bundlesAPI {
			return fmt.Errorf("ListBundles not decoded: %d entries, decoded %d", n, r.bundlesAPI)
		}
		r.listBundlesRaw = append(r.listBundlesRaw, time.Since(start))
	}
	logf("  ListBundles: %d entries in %s, not decoded %s (median of 3)", r.bundlesAPI,
		medianDur(r.listBundles).Round(time.Millisecond), medianDur(r.listBundlesRaw).Round(time.Millisecond))

	// d. GetBundle over every channel head.
	r.heads = len(chans)
	hctx, hcancel := context.WithTimeout(ctx, c.phase)
	defer hcancel()
	// The APIs the default channels' heads provide, for f. below; the
	// bundles themselves are not kept, so that the client's heap (and its
	// collector) stays small while it measures.
	var headAPIs [][]*api.GroupVersionKind
	var errs int
	r.headLat, errs = headLatencies(hctx, cl, chans, c.headLoops, func(ch channelRef, b *api.Bundle) {
		r.headBytes += int64(len(b.GetCsvJson()))
		for _, o := range b.GetObject() {
			r.headBytes += int64(len(o))
		}
		if ch.channel == ch.defaultCh {
			headAPIs = append(headAPIs, b.GetProvidedApis())
		}
	})
	r.headErrs += errs
	logf("  GetBundle over %d heads × %d: p50 %s p99 %s, %d errors", len(chans), c.headLoops,
		pct(r.headLat, 50), pct(r.headLat, 99), r.headErrs)
	// The same requests until the answer's bytes are in the client, not
	// decoded: the server's and the transport's part of the latency.
	r.headRawLat, errs = headRawLatencies(hctx, conn, chans, c.headLoops)
	r.headErrs += errs
	logf("  GetBundle over %d heads × %d, bytes received, not decoded: p50 %s p99 %s", len(chans), c.headLoops,
		pct(r.headRawLat, 50), pct(r.headRawLat, 99))

	// e. GetBundleForChannel with concurrent clients.
	r.gbfcClients = c.clients
	profileAfterLoad, profileAfterRelease := profileServing(ctx, c, p)
	cpuT := procCPU(pid)
	decoded, err := throughput(ctx, c, p.addr, chans, false)
	if err != nil {
		return err
	}
	r.gbfcCPU = procCPU(pid) - cpuT
	r.gbfcN, r.gbfcErrs, r.gbfcElapsed, r.gbfcLat = decoded.n, decoded.errs, decoded.elapsed, decoded.lat
	profileAfterLoad()
	logf("  GetBundleForChannel: %d requests, %d clients, %.0f req/s, %s catalogd CPU per 1,000 answers, %d errors", r.gbfcN, c.clients,
		float64(r.gbfcN)/r.gbfcElapsed.Seconds(), fmtDur(r.cpuPer1000()), r.gbfcErrs)
	cpuT = procCPU(pid)
	if r.gbfcRaw, err = throughput(ctx, c, p.addr, chans, true); err != nil {
		return err
	}
	r.gbfcRaw.cpu = procCPU(pid) - cpuT
	r.gbfcErrs += r.gbfcRaw.errs
	logf("  GetBundleForChannel, answers not decoded: %d requests, %.0f req/s, %s catalogd CPU per 1,000 answers, %d errors", r.gbfcRaw.n,
		r.gbfcRaw.rps(), fmtDur(r.gbfcRaw.cpuPer1000()), r.gbfcRaw.errs)

	// f. GetDefaultBundleThatProvides over APIs the default channel heads provide.
	seen := map[string]bool{}
	var gvks []*api.GroupVersionKind
	for _, apis := range headAPIs {
		for _, g := range apis {
			k := g.GetGroup() + "/" + g.GetVersion() + "/" + g.GetKind()
			if !seen[k] && len(gvks) < c.gvks {
				seen[k] = true
				gvks = append(gvks, g)
			}
		}
	}
	r.nGVKs = len(gvks)
	dctx, dcancel := context.WithTimeout(ctx, c.phase)
	defer dcancel()
	for round := 0; round < 2 && dctx.Err() == nil; round++ {
		for _, g := range gvks {
			if dctx.Err() != nil {
				break
			}
			start := time.Now()
			_, err := cl.GetDefaultBundleThatProvides(dctx, &api.GetDefaultProviderRequest{Group: g.GetGroup(), Version: g.GetVersion(), Kind: g.GetKind()})
			r.defaultLat = append(r.defaultLat, time.Since(start))
			if err != nil {
				r.defaultErrs++
			}
		}
	}
	logf("  GetDefaultBundleThatProvides over %d APIs × 2: p50 %s, %d errors", len(gvks), pct(r.defaultLat, 50), r.defaultErrs)
	r.memBusy = readMem(ctx, p)
	r.rssBusy = r.memBusy.rss
	r.released = awaitRelease(ctx, p, readMem(ctx, p).releases)
	r.rssEnd, r.hwmEnd = procStatus(pid)
	r.memEnd = readMem(ctx, p)
	profileAfterRelease()
	logf("  memory when ready: %s; after serving: right after the last request %s, then (released: %t) %s",
		r.memReady, r.memBusy, r.released, r.memEnd)
	r.cpuServe = procCPU(pid) - cpu0
	return nil
}

// headLatencies times GetBundle over every channel head, rounds times;
// first, when set, sees each head's answer of the first round.
func headLatencies(ctx context.Context, cl api.RegistryClient, chans []channelRef, rounds int, first func(channelRef, *api.Bundle)) (lat []time.Duration, errs int) {
	for round := 0; round < rounds; round++ {
		for _, ch := range chans {
			if ctx.Err() != nil {
				return lat, errs
			}
			start := time.Now()
			b, err := cl.GetBundle(ctx, &api.GetBundleRequest{PkgName: ch.pkg, ChannelName: ch.channel, CsvName: ch.head})
			lat = append(lat, time.Since(start))
			if err != nil {
				errs++
				continue
			}
			if round == 0 && first != nil {
				first(ch, b)
			}
		}
	}
	return lat, errs
}

// headRawLatencies is headLatencies until the client has each answer's
// bytes, not decoded: the server's and the transport's part.
func headRawLatencies(ctx context.Context, conn *grpc.ClientConn, chans []channelRef, rounds int) (lat []time.Duration, errs int) {
	for round := 0; round < rounds; round++ {
		for _, ch := range chans {
			if ctx.Err() != nil {
				return lat, errs
			}
			var raw rawMessage
			start := time.Now()
			err := conn.Invoke(ctx, api.Registry_GetBundle_FullMethodName,
				&api.GetBundleRequest{PkgName: ch.pkg, ChannelName: ch.channel, CsvName: ch.head}, &raw, grpc.ForceCodecV2(rawCodec{}))
			lat = append(lat, time.Since(start))
			if err != nil {
				errs++
			}
		}
	}
	return lat, errs
}

// tput is one run of the concurrent GetBundleForChannel test.
type tput struct {
	n, errs int
	elapsed time.Duration
	// cpu is catalogd's CPU time (user+sys) during the run.
	cpu time.Duration
	// lat is each request's latency.
	lat []time.Duration
}

func (t tput) rps() float64 {
	if t.elapsed <= 0 {
		return 0
	}
	return float64(t.n) / t.elapsed.Seconds()
}

func (t tput) cpuPer1000() time.Duration {
	if t.n == 0 {
		return 0
	}
	return t.cpu * 1000 / time.Duration(t.n)
}

// throughput sends c.requests GetBundleForChannel requests round-robin over
// the channels from c.clients clients, each on its own connection; with
// raw, the clients take the answers' bytes without decoding them.
func throughput(ctx context.Context, c config, addr string, chans []channelRef, raw bool) (tput, error) {
	if len(chans) == 0 {
		return tput{}, fmt.Errorf("no channels")
	}
	conns := make([]*grpc.ClientConn, c.clients)
	for i := range conns {
		cc, err := dial(addr)
		if err != nil {
			return tput{}, err
		}
		defer cc.Close()
		conns[i] = cc
		// Connect before the clock starts.
		if err := connected(ctx, cc); err != nil {
			return tput{}, err
		}
	}
	tctx, cancel := context.WithTimeout(ctx, c.phase)
	defer cancel()
	var next, errs, done atomic.Int64
	var wg sync.WaitGroup
	lats := make([][]time.Duration, c.clients)
	start := time.Now()
	for i := 0; i < c.clients; i++ {
		wg.Add(1)
		go func(i int, cc *grpc.ClientConn) {
			defer wg.Done()
			cl := api.NewRegistryClient(cc)
			for {
				n := next.Add(1)
				if n > int64(c.requests) || tctx.Err() != nil {
					return
				}
				ch := chans[int(n-1)%len(chans)]
				req := &api.GetBundleInChannelRequest{PkgName: ch.pkg, ChannelName: ch.channel}
				var err error
				began := time.Now()
				if raw {
					err = cc.Invoke(tctx, api.Registry_GetBundleForChannel_FullMethodName, req, &rawMessage{}, grpc.ForceCodecV2(rawCodec{}))
				} else {
					_, err = cl.GetBundleForChannel(tctx, req)
				}
				lats[i] = append(lats[i], time.Since(began))
				if err != nil {
					errs.Add(1)
				} else {
					done.Add(1)
				}
			}
		}(i, conns[i])
	}
	wg.Wait()
	t := tput{n: int(done.Load()), errs: int(errs.Load()), elapsed: time.Since(start)}
	for _, l := range lats {
		t.lat = append(t.lat, l...)
	}
	return t, nil
}

// connected connects cc and waits until it is ready.
func connected(ctx context.Context, cc *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cc.Connect()
	for {
		s := cc.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if !cc.WaitForStateChange(ctx, s) {
			return fmt.Errorf("connecting to %s: %w (last state %s)", cc.Target(), ctx.Err(), s)
		}
	}
}

func sortedCopy(d []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

// pct is the nearest-rank percentile.
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := sortedCopy(d)
	i := (p*len(s) + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1]
}

func medianDur(d []time.Duration) time.Duration { return pct(d, 50) }

func medianStart(s []startResult, f func(startResult) int64) int64 {
	v := make([]int64, len(s))
	for i, x := range s {
		v[i] = f(x)
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	if len(v) == 0 {
		return 0
	}
	return v[(len(v)-1)/2]
}

// memBreakdown is where catalogd's memory is, from its /metrics and
// /proc/<pid>/status.
type memBreakdown struct {
	rss, heapInuse, heapIdleKept, answerCache, answers int64
	// releases is how many times catalogd gave memory back after its
	// requests stopped.
	releases int64
	// warm: catalogd has kept the channel heads' answers.
	warm bool
	// heapObjects is the bytes of heap objects allocated and not yet
	// freed.
	heapObjects int64
	// other is what the Go runtime holds besides the heap: goroutine
	// stacks, span and GC metadata, buffers (go_memstats_sys_bytes minus
	// the heap's).
	other int64
	// answerPages is the resident part of catalogd's mapping of its answer
	// file: page cache mapped while answers are sent from it, which the
	// memory release unmaps.
	answerPages int64
}

// String says where every MiB of the RSS is: the heap in use (the model,
// the manifest cache, requests in flight, garbage not yet collected), heap
// pages free but not returned to the kernel, the runtime's other memory,
// and the rest (the binary's pages and the difference between what the
// runtime has mapped and what is resident). Of the heap in use, objects
// are the bytes of objects not yet freed (live or garbage the collector
// has not reached); the rest of it is free room in spans that hold objects.
// The answer cache is kept in catalogd's answer file, in the page cache;
// the pages of it that catalogd has mapped while sending answers count in
// the RSS until the memory release unmaps them.
func (m memBreakdown) String() string {
	rest := m.rss - m.heapInuse - m.heapIdleKept - m.other - m.answerPages
	return fmt.Sprintf("RSS %d MiB = heap in use %d (objects %d) + heap idle not returned %d + runtime other %d + answer file pages mapped %d + binary and unmapped difference %d MiB; answer cache %d MiB (%d answers, in the answer file)",
		mib(m.rss), mib(m.heapInuse), mib(m.heapObjects), mib(m.heapIdleKept), mib(m.other), mib(m.answerPages), mib(rest), mib(m.answerCache), m.answers)
}

// answerFilePages is the resident size of the process's mappings of
// catalogd's answer file (unlinked, so named "... (deleted)"), from
// /proc/<pid>/smaps; 0 if it cannot be read.
func answerFilePages(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0
	}
	var total int64
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") { // a mapping's header line
			in = strings.Contains(line, "catalogd-answers-")
			continue
		}
		if in && f[0] == "Rss:" && len(f) >= 2 {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				total += kb << 10
			}
		}
	}
	return total
}

// awaitRelease waits until catalogd has released memory more than before
// times (--release-memory-after, once its requests stopped), for at most
// releaseWait; false if it did not. Each scrape allocates in catalogd: a
// few, not one every few milliseconds.
func awaitRelease(ctx context.Context, p *proc, before int64) bool {
	return awaitMem(ctx, p, 250*time.Millisecond, releaseWait, func(m memBreakdown) bool { return m.releases > before })
}

// warmWait bounds the wait for catalogd to keep the channel heads'
// answers after it is ready.
const warmWait = 60 * time.Second

// awaitWarm waits until catalogd reports the channel heads' answers kept
// (ferry_catalogd_answers_warm), for at most warmWait.
func awaitWarm(ctx context.Context, p *proc) bool {
	return awaitMem(ctx, p, 50*time.Millisecond, warmWait, func(m memBreakdown) bool { return m.warm })
}

// awaitMem reads catalogd's metrics every interval until ok holds of them,
// for at most limit; false if it did not.
func awaitMem(ctx context.Context, p *proc, interval, limit time.Duration, ok func(memBreakdown) bool) bool {
	return wait.PollUntilContextTimeout(ctx, interval, limit, true, func(ctx context.Context) (bool, error) {
		return ok(readMem(ctx, p)), nil
	}) == nil
}

// releaseWait is how long the bench waits for catalogd to release memory
// after the serving tests: several times its default quiet period.
const releaseWait = 5 * time.Second

// readMem scrapes catalogd's /metrics for the heap and the answer cache.
func readMem(ctx context.Context, p *proc) memBreakdown {
	var m memBreakdown
	m.rss, _ = procStatus(p.cmd.Process.Pid)
	m.answerPages = answerFilePages(p.cmd.Process.Pid)
	body, err := getMetricsListener(ctx, p, "/metrics", 5*time.Second, 8<<20)
	if err != nil {
		logf("  reading /metrics: %v", err)
		return m
	}
	var idle, released, sys, heapSys int64
	for _, l := range strings.Split(string(body), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "go_memstats_heap_inuse_bytes":
			m.heapInuse = int64(v)
		case "go_memstats_heap_alloc_bytes":
			m.heapObjects = int64(v)
		case "go_memstats_heap_idle_bytes":
			idle = int64(v)
		case "go_memstats_heap_released_bytes":
			released = int64(v)
		case "go_memstats_sys_bytes":
			sys = int64(v)
		case "go_memstats_heap_sys_bytes":
			heapSys = int64(v)
		case "ferry_catalogd_answer_cache_bytes":
			m.answerCache = int64(v)
		case "ferry_catalogd_answer_cache_answers":
			m.answers = int64(v)
		case "ferry_catalogd_memory_releases_total":
			m.releases = int64(v)
		case "ferry_catalogd_answers_warm":
			m.warm = v == 1
		}
	}
	m.heapIdleKept = idle - released
	m.other = sys - heapSys
	return m
}

// profileServing, with -profile-dir, saves catalogd's heap profile and
// starts a CPU profile of cpuSeconds. The first function it returns saves
// the heap profile again after a collection (compare with go tool pprof
// -base) and does not wait for the CPU profile, so that the next phase
// follows at once (a pause of a second would let catalogd release memory
// mid-bench); the second, called once catalogd released memory after the
// last phase, waits for the CPU profile and saves the heap profile as it
// is then: what serving keeps live.
func profileServing(ctx context.Context, c config, p *proc) (afterLoad, afterRelease func()) {
	if c.profileDir == "" {
		return func() {}, func() {}
	}
	if err := os.MkdirAll(c.profileDir, 0o755); err != nil {
		logf("  profiles: %v", err)
		return func() {}, func() {}
	}
	save := func(path, file string, timeout time.Duration) {
		if err := saveProfile(ctx, p, path, filepath.Join(c.profileDir, file), timeout); err != nil {
			logf("  profile %s: %v", file, err)
		}
	}
	save("/debug/pprof/heap", "heap-before.pprof", 30*time.Second)
	const cpuSeconds = 10
	cpuDone := make(chan struct{})
	go func() {
		defer close(cpuDone)
		save(fmt.Sprintf("/debug/pprof/profile?seconds=%d", cpuSeconds), "cpu.pprof", (cpuSeconds+30)*time.Second)
	}()
	afterLoad = func() {
		// After a collection: what the heap holds, not its garbage.
		save("/debug/pprof/heap?gc=1", "heap-after.pprof", 30*time.Second)
	}
	afterRelease = func() {
		<-cpuDone
		save("/debug/pprof/heap", "heap-released.pprof", 30*time.Second)
		logf("  profiles in %s (CPU: the first %d s from the concurrent test on)", c.profileDir, cpuSeconds)
	}
	return afterLoad, afterRelease
}

// saveProfile writes what catalogd's metrics listener serves at path to
// file.
func saveProfile(ctx context.Context, p *proc, path, file string, timeout time.Duration) error {
	data, err := getMetricsListener(ctx, p, path, timeout, 64<<20)
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}

// getMetricsListener is what catalogd's metrics listener answers at path,
// at most limit bytes, within timeout.
func getMetricsListener(ctx context.Context, p *proc, path string, timeout time.Duration, limit int64) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+p.metrics+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}

// listBundlesDecoded times the whole ListBundles stream, decoded; n is
// its entries and bytes the size of their CSVs and objects.
func listBundlesDecoded(ctx context.Context, c config, cl api.RegistryClient) (d time.Duration, n int, bytes int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.phase)
	defer cancel()
	start := time.Now()
	s, err := cl.ListBundles(ctx, &api.ListBundlesRequest{})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("ListBundles: %w", err)
	}
	for n < 10_000_000 {
		b, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, 0, fmt.Errorf("ListBundles: %w", err)
		}
		n++
		bytes += int64(len(b.GetCsvJson()))
		for _, o := range b.GetObject() {
			bytes += int64(len(o))
		}
	}
	return time.Since(start), n, bytes, nil
}

// listBundlesRaw reads the whole ListBundles stream without decoding the
// entries and returns how many there were.
func listBundlesRaw(ctx context.Context, conn *grpc.ClientConn) (int, error) {
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, api.Registry_ListBundles_FullMethodName, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		return 0, fmt.Errorf("ListBundles: %w", err)
	}
	if err := s.SendMsg(&api.ListBundlesRequest{}); err != nil {
		return 0, fmt.Errorf("ListBundles: %w", err)
	}
	if err := s.CloseSend(); err != nil {
		return 0, fmt.Errorf("ListBundles: %w", err)
	}
	for n := 0; ; n++ {
		var m rawMessage
		if err := s.RecvMsg(&m); errors.Is(err, io.EOF) {
			return n, nil
		} else if err != nil {
			return n, fmt.Errorf("ListBundles: %w", err)
		}
	}
}

// rawMessage is an answer received and not decoded: its size, and with
// keep its bytes.
type rawMessage struct {
	n    int
	keep bool
	b    []byte
}

// rawCodec encodes requests as protobuf and only counts an answer's bytes, so that
// a latency measured with it ends when the client has the answer, before
// the proto decoder turns its multi-MB strings into a message.
type rawCodec struct{}

// Marshal implements encoding.CodecV2.
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2(protoenc.Name).Marshal(v)
}

// Unmarshal implements encoding.CodecV2.
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("rawCodec: cannot decode into %T", v)
	}
	m.n = data.Len()
	if m.keep {
		m.b = data.Materialize()
	}
	return nil
}

// Name implements encoding.CodecV2.
func (rawCodec) Name() string { return protoenc.Name }
