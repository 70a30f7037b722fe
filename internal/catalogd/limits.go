package catalogd

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/ferrydev/ferry/internal/publish"
)

// MaxRecvMsgSize is the largest request message catalogd accepts, on every
// method. Read requests are a few hundred bytes; Publish sends its archive
// in chunks of at most publish.ChunkSize, which fit with room to spare.
// Responses have no limit on the server side: a bundle with all manifests
// can exceed gRPC's 4 MiB default, so clients raise their receive limit
// (ClientMaxRecvMsgSize).
const MaxRecvMsgSize = 2 << 20

// ClientMaxRecvMsgSize is the receive limit Ferry's clients use.
const ClientMaxRecvMsgSize = 64 << 20

// Flow-control windows: fixed (which turns off gRPC's window growth of up to
// 16 MiB a connection), so that what a peer can make catalogd buffer is
// bounded whatever it sends.
const (
	streamWindow     = 1 << 20
	connectionWindow = 2 << 20
)

// Limits bound what a client can make catalogd hold. DefaultLimits are the
// defaults; every field is a flag of "catalogd serve" (AddFlags).
type Limits struct {
	// MaxConnections is the most connections open at once; more wait in
	// the listen backlog until one closes.
	MaxConnections int
	// MaxConcurrentStreams is the most calls one connection may have open.
	MaxConcurrentStreams uint32
	// MaxConnectionIdle closes a connection that has had no call for this long.
	MaxConnectionIdle time.Duration
	// KeepaliveTime is how long a connection may be silent before catalogd
	// pings it; KeepaliveTimeout how long it waits for the answer before
	// closing the connection.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// KeepaliveMinTime is the shortest interval at which clients may ping;
	// a client that pings more often is disconnected. Pings without an open
	// call are refused too.
	KeepaliveMinTime time.Duration
	// HandshakeTimeout bounds a new connection's TLS and HTTP/2 handshake.
	HandshakeTimeout time.Duration
	// MaxConcurrentPublishes is how many Publish calls may receive their
	// archive at once; more wait (until their deadline) for a turn.
	MaxConcurrentPublishes int
	// PublishIdleTimeout cancels a Publish that sends nothing for this long.
	PublishIdleTimeout time.Duration
	// PublishTimeout is the longest a Publish may take to send its archive.
	PublishTimeout time.Duration
	// MaxDeprecationMessage is the longest deprecation message, in bytes;
	// MaxDeprecations the most deprecations the store keeps.
	MaxDeprecationMessage, MaxDeprecations int
	// AnswerCacheBytes is the byte budget of the single-bundle answers
	// (GetBundle and the like, content included) kept encoded; 0 keeps
	// none, and every answer is encoded anew.
	AnswerCacheBytes int64
}

// DefaultLimits are the limits catalogd serves with unless told otherwise.
func DefaultLimits() Limits {
	return Limits{
		MaxConnections:         256,
		MaxConcurrentStreams:   100,
		MaxConnectionIdle:      5 * time.Minute,
		KeepaliveTime:          2 * time.Minute,
		KeepaliveTimeout:       20 * time.Second,
		KeepaliveMinTime:       30 * time.Second,
		HandshakeTimeout:       10 * time.Second,
		MaxConcurrentPublishes: 4,
		PublishIdleTimeout:     30 * time.Second,
		PublishTimeout:         5 * time.Minute,
		MaxDeprecationMessage:  1024,
		MaxDeprecations:        10000,
		AnswerCacheBytes:       DefaultAnswerCacheBytes,
	}
}

// AddFlags registers a flag for every limit, with l's values as defaults.
func (l *Limits) AddFlags(fl *pflag.FlagSet) {
	fl.IntVar(&l.MaxConnections, "max-connections", l.MaxConnections, "most gRPC connections open at once; more wait until one closes")
	fl.Uint32Var(&l.MaxConcurrentStreams, "max-concurrent-streams", l.MaxConcurrentStreams, "most calls open at once on one connection")
	fl.DurationVar(&l.MaxConnectionIdle, "max-connection-idle", l.MaxConnectionIdle, "close a connection without calls after this long")
	fl.DurationVar(&l.KeepaliveTime, "keepalive-time", l.KeepaliveTime, "ping a connection that was silent this long")
	fl.DurationVar(&l.KeepaliveTimeout, "keepalive-timeout", l.KeepaliveTimeout, "close a connection that does not answer a ping within this")
	fl.DurationVar(&l.KeepaliveMinTime, "keepalive-min-time", l.KeepaliveMinTime, "disconnect clients that ping more often than this")
	fl.DurationVar(&l.HandshakeTimeout, "handshake-timeout", l.HandshakeTimeout, "longest TLS and HTTP/2 handshake of a new connection")
	fl.IntVar(&l.MaxConcurrentPublishes, "max-concurrent-publishes", l.MaxConcurrentPublishes, "Publish calls receiving an archive at once; more wait for a turn")
	fl.DurationVar(&l.PublishIdleTimeout, "publish-idle-timeout", l.PublishIdleTimeout, "cancel a Publish that sends nothing for this long")
	fl.DurationVar(&l.PublishTimeout, "publish-timeout", l.PublishTimeout, "longest time a Publish may take to send its archive")
	fl.IntVar(&l.MaxDeprecationMessage, "max-deprecation-message", l.MaxDeprecationMessage, "longest deprecation message, in bytes")
	fl.IntVar(&l.MaxDeprecations, "max-deprecations", l.MaxDeprecations, "most deprecations kept")
	fl.Int64Var(&l.AnswerCacheBytes, "answer-cache-bytes", l.AnswerCacheBytes, "bytes of single-bundle answers kept encoded (0 keeps none)")
}

// Validate reports every limit that is out of range.
func (l Limits) Validate() error {
	var errs []error
	positive := func(flag string, ok bool) {
		if !ok {
			errs = append(errs, fmt.Errorf("--%s must be positive", flag))
		}
	}
	positive("max-connections", l.MaxConnections > 0)
	positive("max-concurrent-streams", l.MaxConcurrentStreams > 0)
	positive("max-connection-idle", l.MaxConnectionIdle > 0)
	positive("keepalive-time", l.KeepaliveTime > 0)
	positive("keepalive-timeout", l.KeepaliveTimeout > 0)
	positive("keepalive-min-time", l.KeepaliveMinTime > 0)
	positive("handshake-timeout", l.HandshakeTimeout > 0)
	positive("max-concurrent-publishes", l.MaxConcurrentPublishes > 0)
	positive("publish-idle-timeout", l.PublishIdleTimeout > 0)
	positive("publish-timeout", l.PublishTimeout > 0)
	positive("max-deprecation-message", l.MaxDeprecationMessage > 0)
	positive("max-deprecations", l.MaxDeprecations > 0)
	if l.AnswerCacheBytes < 0 {
		errs = append(errs, fmt.Errorf("--answer-cache-bytes must not be negative, got %d", l.AnswerCacheBytes))
	}
	if l.PublishIdleTimeout > l.PublishTimeout {
		errs = append(errs, fmt.Errorf("--publish-idle-timeout (%s) is longer than --publish-timeout (%s)", l.PublishIdleTimeout, l.PublishTimeout))
	}
	return errors.Join(errs...)
}

// grpcOptions are the gRPC server options that enforce the limits.
func (l Limits) grpcOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.MaxConcurrentStreams(l.MaxConcurrentStreams),
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connectionWindow),
		grpc.ConnectionTimeout(l.HandshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: l.MaxConnectionIdle,
			Time:              l.KeepaliveTime,
			Timeout:           l.KeepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: l.KeepaliveMinTime}),
	}
}

// A chunk message is the chunk plus a few bytes of framing.
var _ = [MaxRecvMsgSize - publish.ChunkSize - 1024]struct{}{}
