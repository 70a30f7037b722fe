package main

// The floor: what the same answers cost when a bare gRPC server sends them
// from memory. catalogd's single-bundle answers are kept encoded and sent
// as they are; the floor server holds the very bytes catalogd sent for
// each channel head in plain byte slices and does nothing per request but
// find them. Measured with the same clients on the same machine, it is the
// least any gRPC server (grpc-go, its framing and the loopback) can take
// for these answers here, so catalogd's numbers beside it say how much of
// their cost is catalogd's own.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/proto/api"
)

// floorResult is the serving tests against the floor server.
type floorResult struct {
	answers, bytes int64 // answers held and their bytes
	headLat        []time.Duration
	headRawLat     []time.Duration
	headErrs       int
	decoded, raw   tput
	// listBundles and listBundlesRaw are the ListBundles stream, decoded
	// and bytes only, three times each.
	listBundles, listBundlesRaw []time.Duration
}

// maxFloorAnswer bounds one answer read back from the answers file.
const maxFloorAnswer = 64 << 20

// captureAnswers fetches every channel head's GetBundle answer from
// catalogd as bytes and writes them to path, for the floor server.
func captureAnswers(ctx context.Context, c config, p *proc, chans []channelRef, path string) (n, size int64, err error) {
	conn, err := dial(p.addr)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w := bufio.NewWriter(f)
	record := func(kind byte, fields ...[]byte) error {
		if err := w.WriteByte(kind); err != nil {
			return err
		}
		for _, field := range fields {
			if _, err := w.Write(binary.AppendUvarint(nil, uint64(len(field)))); err != nil {
				return err
			}
			if _, err := w.Write(field); err != nil {
				return err
			}
		}
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, c.phase)
	defer cancel()
	seen := map[[2]string]bool{}
	for _, ch := range chans {
		k := [2]string{ch.pkg, ch.channel}
		if seen[k] {
			continue
		}
		seen[k] = true
		raw := rawMessage{keep: true}
		if err := conn.Invoke(cctx, api.Registry_GetBundle_FullMethodName,
			&api.GetBundleRequest{PkgName: ch.pkg, ChannelName: ch.channel, CsvName: ch.head}, &raw, grpc.ForceCodecV2(rawCodec{})); err != nil {
			return n, size, fmt.Errorf("GetBundle %s/%s: %w", ch.pkg, ch.channel, err)
		}
		if err := record(headRecord, []byte(ch.pkg), []byte(ch.channel), raw.b); err != nil {
			return n, size, err
		}
		n++
		size += int64(len(raw.b))
	}
	// The ListBundles stream, entry by entry.
	s, err := conn.NewStream(cctx, &grpc.StreamDesc{ServerStreams: true}, api.Registry_ListBundles_FullMethodName, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		return n, size, fmt.Errorf("ListBundles: %w", err)
	}
	if err := s.SendMsg(&api.ListBundlesRequest{}); err != nil {
		return n, size, fmt.Errorf("ListBundles: %w", err)
	}
	if err := s.CloseSend(); err != nil {
		return n, size, fmt.Errorf("ListBundles: %w", err)
	}
	for {
		m := rawMessage{keep: true}
		if err := s.RecvMsg(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return n, size, fmt.Errorf("ListBundles: %w", err)
		}
		if err := record(listRecord, m.b); err != nil {
			return n, size, err
		}
	}
	return n, size, w.Flush()
}

// The records of the answers file: a kind byte, then each field as its
// length (uvarint) and its bytes.
const (
	headRecord = 'h' // package, channel, the head's GetBundle answer
	listRecord = 'l' // one ListBundles entry, in the order sent
)

// floorAnswers are the answers the floor server sends.
type floorAnswers struct {
	heads map[[2]string][]byte // by package and channel
	list  [][]byte             // the ListBundles entries
}

// readFloorAnswers reads the file captureAnswers wrote.
func readFloorAnswers(path string) (*floorAnswers, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	field := func() ([]byte, error) {
		l, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, err
		}
		if l > maxFloorAnswer {
			return nil, fmt.Errorf("a field of %d bytes, more than %d", l, maxFloorAnswer)
		}
		b := make([]byte, l)
		_, err = io.ReadFull(r, b)
		return b, err
	}
	fields := func(n int) ([][]byte, error) {
		out := make([][]byte, n)
		for i := range out {
			var err error
			if out[i], err = field(); errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			} else if err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	a := &floorAnswers{heads: map[[2]string][]byte{}}
	for {
		kind, err := r.ReadByte()
		if errors.Is(err, io.EOF) {
			return a, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		switch kind {
		case headRecord:
			f, err := fields(3)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			a.heads[[2]string{string(f[0]), string(f[1])}] = f[2]
		case listRecord:
			f, err := fields(1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			a.list = append(a.list, f[0])
		default:
			return nil, fmt.Errorf("%s: unknown record kind %q", path, kind)
		}
	}
}

// floorMain serves the answers of -answers as GetBundle and
// GetBundleForChannel of api.Registry on -listen until it is stopped.
func floorMain(args []string) int {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	path := fs.String("answers", "", "the answers file the bench captured from catalogd")
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on (127.0.0.1 only)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	answers, err := readFloorAnswers(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		return 1
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		return 1
	}
	// catalogd's transport settings, so that only the server differs.
	s := grpc.NewServer(grpc.ForceServerCodecV2(floorCodec{}), grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.WriteBufferSize(catalogd.WriteBufferSize))
	s.RegisterService(floorService(answers), nil)
	if err := s.Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		return 1
	}
	return 0
}

// floorAnswer is an answer sent as it is.
type floorAnswer []byte

// floorCodec decodes requests as protobuf and sends a floorAnswer's bytes
// without encoding them.
type floorCodec struct{}

// Marshal implements encoding.CodecV2.
func (floorCodec) Marshal(v any) (mem.BufferSlice, error) {
	if a, ok := v.(floorAnswer); ok {
		return mem.BufferSlice{mem.SliceBuffer(a)}, nil
	}
	return encoding.GetCodecV2(protoenc.Name).Marshal(v)
}

// Unmarshal implements encoding.CodecV2.
func (floorCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return encoding.GetCodecV2(protoenc.Name).Unmarshal(data, v)
}

// Name implements encoding.CodecV2.
func (floorCodec) Name() string { return protoenc.Name }

// floorService answers GetBundle and GetBundleForChannel of api.Registry
// from the heads' answers (the package and channel choose one), and
// ListBundles with the entries captured.
func floorService(a *floorAnswers) *grpc.ServiceDesc {
	find := func(pkg, ch string) (any, error) {
		if b, ok := a.heads[[2]string{pkg, ch}]; ok {
			return floorAnswer(b), nil
		}
		return nil, fmt.Errorf("no answer for %s/%s", pkg, ch)
	}
	return &grpc.ServiceDesc{
		ServiceName: api.Registry_ServiceDesc.ServiceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "GetBundle", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var req api.GetBundleRequest
				if err := dec(&req); err != nil {
					return nil, err
				}
				return find(req.GetPkgName(), req.GetChannelName())
			}},
			{MethodName: "GetBundleForChannel", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var req api.GetBundleInChannelRequest
				if err := dec(&req); err != nil {
					return nil, err
				}
				return find(req.GetPkgName(), req.GetChannelName())
			}},
		},
		Streams: []grpc.StreamDesc{{StreamName: "ListBundles", ServerStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
			var req api.ListBundlesRequest
			if err := s.RecvMsg(&req); err != nil {
				return err
			}
			for _, e := range a.list {
				if err := s.SendMsg(floorAnswer(e)); err != nil {
					return err
				}
			}
			return nil
		}}},
	}
}

// measureFloor starts the floor server on the answers captured from
// catalogd and runs the GetBundle and GetBundleForChannel tests against
// it, as against catalogd.
func measureFloor(ctx context.Context, c config, chans []channelRef, answersPath, tmp string) (*floorResult, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(tmp, "floor.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "floor", "-answers", answersPath, "-listen", addr)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, addr: addr, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	defer p.stop()
	conn, err := dial(addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// Ready once it answers the first head.
	first := chans[0]
	deadline := time.Now().Add(c.startMax)
	for {
		var raw rawMessage
		actx, cancel := context.WithTimeout(ctx, time.Second)
		err := conn.Invoke(actx, api.Registry_GetBundleForChannel_FullMethodName,
			&api.GetBundleInChannelRequest{PkgName: first.pkg, ChannelName: first.channel}, &raw, grpc.ForceCodecV2(rawCodec{}), grpc.WaitForReady(true))
		cancel()
		if err == nil {
			break
		}
		if p.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("floor server not ready: %w\n%s", err, p.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	f := &floorResult{}
	pid := cmd.Process.Pid
	cl := api.NewRegistryClient(conn)
	for i := 0; i < 3; i++ {
		d, _, _, err := listBundlesDecoded(ctx, c, cl)
		if err != nil {
			return nil, fmt.Errorf("floor: %w", err)
		}
		f.listBundles = append(f.listBundles, d)
		lctx, lcancel := context.WithTimeout(ctx, c.phase)
		start := time.Now()
		_, err = listBundlesRaw(lctx, conn)
		lcancel()
		if err != nil {
			return nil, fmt.Errorf("floor: %w", err)
		}
		f.listBundlesRaw = append(f.listBundlesRaw, time.Since(start))
	}
	logf("  floor: ListBundles in %s, not decoded %s (median of 3)", medianDur(f.listBundles).Round(time.Millisecond), medianDur(f.listBundlesRaw).Round(time.Millisecond))
	hctx, hcancel := context.WithTimeout(ctx, c.phase)
	defer hcancel()
	var errs int
	f.headLat, errs = headLatencies(hctx, cl, chans, c.headLoops, nil)
	f.headErrs += errs
	f.headRawLat, errs = headRawLatencies(hctx, conn, chans, c.headLoops)
	f.headErrs += errs
	logf("  floor: GetBundle over %d heads × %d: p50 %s p99 %s; bytes only p50 %s p99 %s; %d errors", len(chans), c.headLoops,
		pct(f.headLat, 50), pct(f.headLat, 99), pct(f.headRawLat, 50), pct(f.headRawLat, 99), f.headErrs)
	for _, raw := range []bool{false, true} {
		cpu := procCPU(pid)
		t, err := throughput(ctx, c, addr, chans, raw)
		if err != nil {
			return nil, fmt.Errorf("floor: %w", err)
		}
		t.cpu = procCPU(pid) - cpu
		if raw {
			f.raw = t
		} else {
			f.decoded = t
		}
		logf("  floor: GetBundleForChannel (bytes only: %t): %.0f req/s, %s CPU per 1,000 answers, %d errors", raw, t.rps(), fmtDur(t.cpuPer1000()), t.errs)
	}
	return f, nil
}
