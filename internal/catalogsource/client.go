package catalogsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// Client talks to one catalogd over gRPC.
type Client struct {
	address    string
	conn       *grpc.ClientConn
	api        catalogv1.CatalogServiceClient
	handshakes *handshakes
}

// DialOption configures Dial.
type DialOption func(*dialOptions)

type dialOptions struct {
	security *Security
}

// WithSecurity sets how the connection is secured; default (and with nil):
// TLS verified against the system roots (SystemRootsSecurity).
func WithSecurity(s *Security) DialOption { return func(o *dialOptions) { o.security = s } }

// Dial returns a client for the catalogd at address (host:port). The
// connection is made lazily, on the first call.
func Dial(address string, opts ...DialOption) (*Client, error) {
	o := dialOptions{security: SystemRootsSecurity()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.security == nil {
		o.security = SystemRootsSecurity()
	}
	rec := &handshakes{}
	creds := o.security.credentials()
	if !o.security.Plaintext {
		creds = &recordingCredentials{TransportCredentials: creds, address: address, trust: o.security.Trust, rec: rec}
	}
	conn, err := grpc.NewClient("dns:///"+address,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(catalogd.ClientMaxRecvMsgSize)),
		// The follower paces reconnection itself and resets gRPC's backoff
		// before each attempt; this only bounds gRPC's own retries.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: defaultRetryCap},
			MinConnectTimeout: 10 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("catalog at %s: %w", address, err)
	}
	return &Client{address: address, conn: conn, api: catalogv1.NewCatalogServiceClient(conn), handshakes: rec}, nil
}

// explain returns the failed TLS handshake behind err when err is gRPC's
// report of one, else err. gRPC gives the handshake's error only as text
// ("transport: authentication handshake failed: ..."); the credentials
// recorded it as it was.
func (c *Client) explain(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "handshake") {
		return err
	}
	if herr := c.handshakes.err(); herr != nil {
		return herr
	}
	return err
}

// Address is the host:port the client talks to.
func (c *Client) Address() string { return c.address }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// resetBackoff makes the next call try to connect at once.
func (c *Client) resetBackoff() { c.conn.ResetConnectBackoff() }

// Snapshot fetches the whole catalog without manifests and assembles it,
// validated as the server validates it, under the server's digest. When
// ifNoneMatch equals the served digest it returns (nil, true, nil).
func (c *Client) Snapshot(ctx context.Context, ifNoneMatch string) (*catalog.Catalog, bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.api.GetSnapshot(ctx, &catalogv1.GetSnapshotRequest{IfNoneMatch: ifNoneMatch})
	if err != nil {
		return nil, false, err
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, false, err
	}
	info := first.GetInfo()
	if info == nil {
		return nil, false, errors.New("snapshot does not start with the catalog info")
	}
	if first.GetNotModified() {
		return nil, true, nil
	}
	var docs catalog.Documents
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, err
		}
		switch it := chunk.GetItem().(type) {
		case *catalogv1.SnapshotChunk_Package:
			addPackage(&docs, it.Package)
		case *catalogv1.SnapshotChunk_Bundle:
			docs.Bundles = append(docs.Bundles, bundleDoc(it.Bundle))
		}
	}
	return catalog.Assemble(c.address, info.GetDigest(), docs), false, nil
}

// Bundle fetches one bundle, with its manifests, by package and name.
func (c *Client) Bundle(ctx context.Context, pkg, name string) (*catalogv1.Bundle, error) {
	return c.api.GetBundle(ctx, &catalogv1.GetBundleRequest{Package: pkg, Name: name})
}

// Watch opens the Watch stream: the catalog info now and on every change.
func (c *Client) Watch(ctx context.Context) (grpc.ServerStreamingClient[catalogv1.CatalogEvent], error) {
	return c.api.Watch(ctx, &catalogv1.WatchRequest{})
}

// ManifestsOf converts a bundle's manifests.
func ManifestsOf(b *catalogv1.Bundle) []catalog.Manifest {
	out := make([]catalog.Manifest, 0, len(b.GetManifests()))
	for _, m := range b.GetManifests() {
		out = append(out, catalog.Manifest{APIVersion: m.GetApiVersion(), Kind: m.GetKind(), Name: m.GetName(), JSON: json.RawMessage(m.GetJson())})
	}
	return out
}

func addPackage(docs *catalog.Documents, p *catalogv1.Package) {
	docs.Packages = append(docs.Packages, catalog.PackageDoc{
		Name: p.GetName(), DefaultChannel: p.GetDefaultChannel(), Description: p.GetDescription(),
		Deprecation: deprecation(p.GetDeprecation()),
	})
	for _, ch := range p.GetChannels() {
		cd := catalog.ChannelDoc{Package: p.GetName(), Name: ch.GetName(), Deprecation: deprecation(ch.GetDeprecation())}
		for _, e := range ch.GetEntries() {
			cd.Entries = append(cd.Entries, catalog.ChannelEntry{Name: e.GetName(), Replaces: e.GetReplaces(), Skips: e.GetSkips(), SkipRange: e.GetSkipRange()})
		}
		docs.Channels = append(docs.Channels, cd)
	}
}

func bundleDoc(b *catalogv1.Bundle) catalog.BundleDoc {
	d := catalog.BundleDoc{
		Package: b.GetPackage(), Name: b.GetName(), Image: b.GetImage(),
		Deprecation: deprecation(b.GetDeprecation()), Digest: b.GetDigest(), ManifestsDigest: b.GetManifestsDigest(),
	}
	for _, p := range b.GetProperties() {
		d.Properties = append(d.Properties, catalog.Property{Type: p.GetType(), Value: json.RawMessage(p.GetValue())})
	}
	for _, r := range b.GetRelatedImages() {
		d.RelatedImages = append(d.RelatedImages, catalog.RelatedImage{Name: r.GetName(), Image: r.GetImage()})
	}
	return d
}

func deprecation(d *catalogv1.Deprecation) *catalog.Deprecation {
	if d == nil {
		return nil
	}
	return &catalog.Deprecation{Message: d.GetMessage()}
}
