package catalogd

import (
	"context"
	"math"
	"net"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/memrelease"
	"github.com/ferrydev/ferry/proto/api"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// HealthServices are the service names health answers SERVING for: "" for
// kubelet probes, "Registry" for operator-registry's Go client, and each
// service's full name.
var HealthServices = []string{"", "Registry", "api.Registry", "api.ExperimentalRegistry", "ferry.catalog.v1.CatalogService"}

// WriteBufferSize is how many bytes a connection gathers before writing
// them to the socket.
const WriteBufferSize = 256 << 10

// Server is catalogd's gRPC server.
type Server struct {
	grpc    *grpc.Server
	health  *health.Server
	log     logr.Logger
	metrics *Metrics
	limits  Limits
	reg     *RegistryServer
	// release gives memory back when requests stop; nil: never.
	release *memrelease.Releaser
}

type serverOptions struct {
	log       logr.Logger
	metrics   *Metrics
	publisher *Publisher
	grpcOpts  []grpc.ServerOption
	limits    Limits
	status    func(*catalog.Catalog) []catalog.Problem
	answerDir string
	// answerMemory is the budget of answers kept in memory when the answer
	// file cannot be created.
	answerMemory int64
	// releaseQuiet is how long no request begins before memory is given
	// back to the kernel; 0: never.
	releaseQuiet time.Duration
}

// ServerOption configures NewServer.
type ServerOption func(*serverOptions)

// WithLogger sets the logger.
func WithLogger(l logr.Logger) ServerOption { return func(o *serverOptions) { o.log = l } }

// WithLimits sets the connection and request limits (default DefaultLimits).
func WithLimits(l Limits) ServerOption { return func(o *serverOptions) { o.limits = l } }

// WithSourceProblems adds fn's problems to GetCatalogInfo: the state of
// sources that is not part of the catalog served, such as a catalog image
// that could not be pulled. fn is given the catalog GetCatalogInfo
// reports, so that the two agree while a reload swaps a catalog in.
func WithSourceProblems(fn func(*catalog.Catalog) []catalog.Problem) ServerOption {
	return func(o *serverOptions) { o.status = fn }
}

// WithAnswerDir is the directory the answer file is created in (default
// os.TempDir()): the single-bundle answers kept encoded live in that file,
// which has no name, so that they take page cache instead of heap. When it
// cannot be created, at most memoryBudget bytes of answers (default
// DefaultAnswerMemoryBytes) are kept in memory and the reason is logged.
func WithAnswerDir(dir string, memoryBudget int64) ServerOption {
	return func(o *serverOptions) { o.answerDir, o.answerMemory = dir, memoryBudget }
}

// WithMemoryRelease gives memory back to the kernel once no request has
// begun for quiet (memrelease): after a burst of requests the heap holds
// garbage and free pages that the runtime would otherwise keep for minutes.
// The free answer buffers and the catalog's decoded manifests (a cache,
// read from disk again on use) are dropped first. 0 (the default) never
// does.
func WithMemoryRelease(quiet time.Duration) ServerOption {
	return func(o *serverOptions) { o.releaseQuiet = quiet }
}

// WithMetrics records request metrics.
func WithMetrics(m *Metrics) ServerOption { return func(o *serverOptions) { o.metrics = m } }

// NewServer builds the gRPC server with both catalog services, health and reflection.
func NewServer(h *Holder, opts ...ServerOption) *Server {
	o := serverOptions{log: logr.Discard(), limits: DefaultLimits(), answerMemory: DefaultAnswerMemoryBytes}
	for _, opt := range opts {
		opt(&o)
	}
	// Single-bundle answers are sent as kept, already encoded.
	gopts := append(o.limits.grpcOptions(), grpc.MaxSendMsgSize(math.MaxInt32), grpc.ForceServerCodecV2(newPassthroughCodec()),
		// A connection's writes go out WriteBufferSize at a time (gRPC's
		// default, 32 KiB, is a system call for every two frames of a
		// 200 KB answer); gRPC takes the buffer from a pool only while a
		// connection writes, so idle connections hold none.
		grpc.WriteBufferSize(WriteBufferSize))
	if o.metrics != nil {
		gopts = append(gopts,
			grpc.ChainUnaryInterceptor(o.metrics.GRPC.UnaryServerInterceptor()),
			grpc.ChainStreamInterceptor(o.metrics.GRPC.StreamServerInterceptor()))
	}
	rs := NewRegistryServer(h, WithAnswerBudget(o.limits.AnswerCacheBytes), WithAnswerFile(o.answerDir, o.answerMemory))
	var release *memrelease.Releaser
	if o.releaseQuiet > 0 {
		ropts := []memrelease.Option{memrelease.WithQuiet(o.releaseQuiet), memrelease.WithBeforeRelease(func() {
			rs.answers.dropPages()
			if c := h.Catalog(); c != nil {
				c.DropManifestCache()
			}
		})}
		if o.metrics != nil {
			ropts = append(ropts, memrelease.WithOnRelease(o.metrics.memoryReleases.Inc))
		}
		release = memrelease.New(ropts...)
		gopts = append(gopts, grpc.ChainUnaryInterceptor(beginUnary(release)), grpc.ChainStreamInterceptor(beginStream(release)))
	}
	cs := NewCatalogServer(h)
	cs.status = o.status
	if o.publisher != nil {
		cs.publisher = o.publisher
		gopts = append(gopts,
			grpc.ChainUnaryInterceptor(o.publisher.UnaryInterceptor()),
			grpc.ChainStreamInterceptor(o.publisher.StreamInterceptor()))
	}
	gopts = append(gopts, o.grpcOpts...)
	g := grpc.NewServer(gopts...)
	if _, budget, err := rs.AnswerStore(); err != nil {
		o.log.Error(err, "keeping answers in memory instead of in a file", "dir", o.answerDir, "bytes", budget)
	}
	g.RegisterService(registryServiceDesc(), rs)
	if o.metrics != nil {
		o.metrics.observeAnswers(rs)
	}
	api.RegisterExperimentalRegistryServer(g, NewExperimentalServer(h))
	catalogv1.RegisterCatalogServiceServer(g, cs)
	hs := health.NewServer()
	for _, name := range HealthServices {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	if o.metrics != nil {
		o.metrics.GRPC.InitializeMetrics(g)
	}
	return &Server{grpc: g, health: hs, log: o.log, metrics: o.metrics, limits: o.limits, reg: rs, release: release}
}

// beginUnary tells r of every unary call.
func beginUnary(r *memrelease.Releaser) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		r.Begin()
		return handler(ctx, req)
	}
}

// beginStream tells r of every streaming call.
func beginStream(r *memrelease.Releaser) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		r.Begin()
		return handler(srv, ss)
	}
}

// AnswerStore reports whether the kept answers' bytes are in the answer
// file, their budget, and if not in a file although one was asked for, why.
func (s *Server) AnswerStore() (inFile bool, budget int64, err error) { return s.reg.AnswerStore() }

// GRPC returns the underlying gRPC server.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Serve answers on lis until Stop, on at most Limits.MaxConnections
// connections at once. Meanwhile it keeps the answers for the channel heads
// of the catalog served ready (RegistryServer.WarmAnswers) and, with
// WithMemoryRelease, gives memory back when requests stop.
func (s *Server) Serve(lis net.Listener) error {
	ctx, cancel := context.WithCancel(context.Background())
	warmed := make(chan struct{})
	go func() {
		defer close(warmed)
		s.reg.WarmAnswers(ctx)
	}()
	released := make(chan struct{})
	if s.release == nil {
		close(released)
	} else {
		go func() {
			defer close(released)
			s.release.Run(ctx)
		}()
	}
	defer func() {
		cancel()
		<-warmed
		<-released
	}()
	return s.grpc.Serve(newLimitListener(lis, s.limits.MaxConnections, s.metrics))
}

// Stop marks every service NOT_SERVING, lets running calls finish for up to
// timeout (streams such as Watch are cancelled then) and stops.
func (s *Server) Stop(ctx context.Context, timeout time.Duration) {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Info("graceful stop timed out; closing remaining calls", "timeout", timeout)
		s.grpc.Stop()
	case <-ctx.Done():
		s.grpc.Stop()
	}
	if err := s.reg.Close(); err != nil {
		s.log.Error(err, "closing the answer file")
	}
}
