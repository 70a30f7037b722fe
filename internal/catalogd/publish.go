package catalogd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/go-logr/logr"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/publish"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// Names of the sources that carry what was published.
const (
	PublishedSourceName    = "published"
	DeprecationsSourceName = "published-deprecations"
)

// Authorizer finds what a bearer token may do.
type Authorizer interface {
	Lookup(token string) (*publish.Grant, bool)
}

// Publisher implements Publish and Deprecate: it validates uploads, keeps
// them in the store and serves the static sources plus everything published.
// Published bundles form one bundle-tree source (<package>/<version>/) that
// is an overlay: a bundle of a package that a static bundle or bundle-tree
// source defines joins that package.
type Publisher struct {
	store    *publish.Store
	auth     Authorizer
	reloader *Reloader
	log      logr.Logger
	metrics  *Metrics
	limits   Limits
	// turns holds a token for each Publish receiving its archive.
	turns chan struct{}

	mu           sync.RWMutex
	bundles      map[string]*publish.Record     // by package/version
	deprecations map[string]publish.Deprecation // by package, schema and name
}

// PublisherOption configures NewPublisher.
type PublisherOption func(*Publisher)

// WithPublishLimits sets the limits of Publish and Deprecate (the Publish
// and deprecation fields of l; default DefaultLimits).
func WithPublishLimits(l Limits) PublisherOption { return func(p *Publisher) { p.limits = l } }

// NewPublisher reads everything stored and adds it to the reloader's sources.
// Load the first catalog with Reloader.Sources afterwards.
func NewPublisher(store *publish.Store, auth Authorizer, r *Reloader, log logr.Logger, m *Metrics, opts ...PublisherOption) (*Publisher, error) {
	p := &Publisher{
		store: store, auth: auth, reloader: r, log: log, metrics: m, limits: DefaultLimits(),
		bundles: map[string]*publish.Record{}, deprecations: map[string]publish.Deprecation{},
	}
	for _, o := range opts {
		o(p)
	}
	if err := p.limits.Validate(); err != nil {
		return nil, err
	}
	p.turns = make(chan struct{}, p.limits.MaxConcurrentPublishes)
	recs, err := store.All()
	if err != nil {
		return nil, fmt.Errorf("reading published bundles: %w", err)
	}
	for _, rec := range recs {
		p.bundles[rec.Package+"/"+rec.Version] = rec
	}
	deps, err := store.Deprecations()
	if err != nil {
		return nil, fmt.Errorf("reading deprecations: %w", err)
	}
	for _, d := range deps {
		p.deprecations[depKey(d)] = d
	}
	r.SetExtraSources(p.Sources)
	log.Info("published bundles loaded", "store", store.Path(), "bundles", len(recs), "deprecations", len(deps))
	return p, nil
}

func depKey(d publish.Deprecation) string { return d.Package + "\x00" + d.Schema + "\x00" + d.Name }

// Sources returns the published bundles and deprecations as catalog sources.
func (p *Publisher) Sources() []catalog.Source {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return sourcesOf(p.bundles, p.deprecations)
}

func sourcesOf(bundles map[string]*publish.Record, deps map[string]publish.Deprecation) []catalog.Source {
	var out []catalog.Source
	if len(bundles) > 0 {
		tree := publish.Files{}
		for key, rec := range bundles {
			for f, data := range rec.Files {
				tree[key+"/"+f] = data
			}
		}
		out = append(out, catalog.Source{Name: PublishedSourceName, FS: tree.FS(), Format: catalog.FormatBundleTree, Overlay: true})
	}
	if len(deps) > 0 {
		out = append(out, catalog.Source{Name: DeprecationsSourceName, FS: deprecationsFBC(deps).FS(), Format: catalog.FormatFBC})
	}
	return out
}

// deprecationsFBC writes the deprecations as olm.deprecations documents.
func deprecationsFBC(deps map[string]publish.Deprecation) publish.Files {
	type ref struct {
		Schema string `json:"schema"`
		Name   string `json:"name,omitempty"`
	}
	type entry struct {
		Reference ref    `json:"reference"`
		Message   string `json:"message"`
	}
	type doc struct {
		Schema  string  `json:"schema"`
		Package string  `json:"package"`
		Entries []entry `json:"entries"`
	}
	byPkg := map[string]*doc{}
	keys := make([]string, 0, len(deps))
	for k := range deps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var order []string
	for _, k := range keys {
		d := deps[k]
		dd := byPkg[d.Package]
		if dd == nil {
			dd = &doc{Schema: "olm.deprecations", Package: d.Package}
			byPkg[d.Package] = dd
			order = append(order, d.Package)
		}
		dd.Entries = append(dd.Entries, entry{Reference: ref{Schema: d.Schema, Name: d.Name}, Message: d.Message})
	}
	var b strings.Builder
	for _, pkg := range order {
		js, _ := json.Marshal(byPkg[pkg])
		b.Write(js)
		b.WriteByte('\n')
	}
	return publish.Files{"deprecations.json": []byte(b.String())}
}

// The methods that need a token.
var protectedMethods = map[string]bool{
	catalogv1.CatalogService_Publish_FullMethodName:   true,
	catalogv1.CatalogService_Deprecate_FullMethodName: true,
}

type grantKey struct{}

// authenticate reads "authorization: Bearer <token>". No token is
// Unauthenticated; a token that is not in the tokens file is PermissionDenied.
func (p *Publisher) authenticate(ctx context.Context, method string) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return nil, status.Error(codes.Unauthenticated, "no bearer token: send \"authorization: Bearer <token>\"")
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return nil, status.Error(codes.Unauthenticated, "the authorization header is not \"Bearer <token>\"")
	}
	g, ok := p.auth.Lookup(tok)
	if !ok {
		p.log.Info("refused: unknown token", "method", method)
		return nil, status.Error(codes.PermissionDenied, "the token is not valid")
	}
	return context.WithValue(ctx, grantKey{}, g), nil
}

func grantFrom(ctx context.Context) *publish.Grant {
	g, _ := ctx.Value(grantKey{}).(*publish.Grant)
	return g
}

// UnaryInterceptor authenticates Deprecate; reads stay open.
func (p *Publisher) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !protectedMethods[info.FullMethod] {
			return handler(ctx, req)
		}
		ctx, err := p.authenticate(ctx, info.FullMethod)
		if err != nil {
			p.countDeprecate("denied")
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor authenticates Publish; reads stay open.
func (p *Publisher) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !protectedMethods[info.FullMethod] {
			return handler(srv, ss)
		}
		ctx, err := p.authenticate(ss.Context(), info.FullMethod)
		if err != nil {
			p.countPublish("denied")
			return err
		}
		return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	}
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

func (p *Publisher) countPublish(result string) {
	if p.metrics != nil {
		p.metrics.publishes.WithLabelValues(result).Inc()
	}
}

func (p *Publisher) countDeprecate(result string) {
	if p.metrics != nil {
		p.metrics.deprecations.WithLabelValues(result).Inc()
	}
}

// Publish implements CatalogService.Publish.
func (s *CatalogServer) Publish(stream grpc.ClientStreamingServer[catalogv1.PublishRequest, catalogv1.PublishResponse]) error {
	if s.publisher == nil {
		return status.Error(codes.Unimplemented, "publishing is not enabled on this server (start catalogd serve with --data-dir and --token-file)")
	}
	start := time.Now()
	resp, err := s.publisher.publish(stream)
	result := publishResult(resp, err)
	s.publisher.countPublish(result)
	if err != nil {
		s.publisher.log.Info("publish refused", "result", result, "code", status.Code(err).String(),
			"token", tokenID(stream.Context()), "error", firstLine(status.Convert(err).Message()))
		return err
	}
	s.publisher.log.Info("bundle published", "result", result, "package", resp.GetPackage(), "version", resp.GetVersion(),
		"digest", resp.GetDigest(), "channels", resp.GetChannels(), "token", tokenID(stream.Context()),
		"catalogDigest", resp.GetCatalogDigest(), "duration", time.Since(start).Round(time.Millisecond))
	return stream.SendAndClose(resp)
}

func tokenID(ctx context.Context) string {
	if g := grantFrom(ctx); g != nil {
		return g.ID
	}
	return ""
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

func publishResult(resp *catalogv1.PublishResponse, err error) string {
	switch status.Code(err) {
	case codes.OK:
		if resp.GetUnchanged() {
			return "unchanged"
		}
		return "published"
	case codes.InvalidArgument, codes.ResourceExhausted, codes.FailedPrecondition:
		return "invalid"
	case codes.AlreadyExists:
		return "conflict"
	case codes.PermissionDenied, codes.Unauthenticated:
		return "denied"
	default:
		return "error"
	}
}

// receive reads the header and the archive, and tells received the size of
// every chunk that arrives. The archive buffer grows with
// what arrives, never beyond what the header announced; a client that sends
// nothing for PublishIdleTimeout, or has not sent everything after
// PublishTimeout, is cut off.
func (p *Publisher) receive(stream grpc.ClientStreamingServer[catalogv1.PublishRequest, catalogv1.PublishResponse], g *publish.Grant, received func(n int)) (*catalogv1.PublishHeader, []byte, error) {
	ctx := stream.Context()
	msgs := make(chan recvResult)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			m, err := stream.Recv()
			select {
			case msgs <- recvResult{m, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	total := time.NewTimer(p.limits.PublishTimeout)
	defer total.Stop()
	idle := time.NewTimer(p.limits.PublishIdleTimeout)
	defer idle.Stop()
	next := func() (*catalogv1.PublishRequest, error) {
		select {
		case r := <-msgs:
			idle.Reset(p.limits.PublishIdleTimeout)
			received(len(r.m.GetChunk()))
			return r.m, r.err
		case <-idle.C:
			return nil, status.Errorf(codes.DeadlineExceeded, "nothing received for %s: the upload is cancelled", p.limits.PublishIdleTimeout)
		case <-total.C:
			return nil, status.Errorf(codes.DeadlineExceeded, "the upload took longer than %s: it is cancelled", p.limits.PublishTimeout)
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	return receiveFrom(next, g)
}

type recvResult struct {
	m   *catalogv1.PublishRequest
	err error
}

// receiveFrom reads a Publish stream's messages from next: the header first,
// then chunks. It checks the framing and returns the header and archive.
func receiveFrom(next func() (*catalogv1.PublishRequest, error), g *publish.Grant) (*catalogv1.PublishHeader, []byte, error) {
	first, err := next()
	if errors.Is(err, io.EOF) {
		return nil, nil, status.Error(codes.InvalidArgument, "empty stream: the first message must be a header")
	}
	if err != nil {
		return nil, nil, err
	}
	hdr := first.GetHeader()
	switch {
	case hdr == nil:
		return nil, nil, status.Error(codes.InvalidArgument, "the first message must be a header")
	case hdr.GetSize() <= 0:
		return nil, nil, status.Error(codes.InvalidArgument, "header: size must be positive")
	case hdr.GetSize() > publish.MaxArchiveBytes:
		return nil, nil, status.Errorf(codes.ResourceExhausted, "header: the archive is %d bytes; at most %d (%d MiB) are accepted", hdr.GetSize(), publish.MaxArchiveBytes, publish.MaxArchiveBytes>>20)
	case len(hdr.GetSha256()) != 64:
		return nil, nil, status.Error(codes.InvalidArgument, "header: sha256 must be 64 hex digits")
	}
	// The package limit is checked as soon as it is named, before the upload.
	if pkg := hdr.GetPackage(); pkg != "" && !g.Allows(pkg) {
		return nil, nil, status.Errorf(codes.PermissionDenied, "the token may not publish package %q", pkg)
	}
	size := int(hdr.GetSize())
	var buf []byte
	for {
		m, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		chunk := m.GetChunk()
		if m.GetHeader() != nil {
			return nil, nil, status.Error(codes.InvalidArgument, "a second header: only the first message is a header")
		}
		if len(chunk) > publish.ChunkSize {
			return nil, nil, status.Errorf(codes.InvalidArgument, "a chunk of %d bytes: chunks are at most %d bytes", len(chunk), publish.ChunkSize)
		}
		if len(chunk) > size-len(buf) {
			return nil, nil, status.Errorf(codes.InvalidArgument, "more data than the %d bytes the header announced", size)
		}
		if len(chunk) > cap(buf)-len(buf) {
			// Grow with what arrived (doubling), never beyond the announced size.
			grown := make([]byte, len(buf), min(max(2*cap(buf), len(buf)+len(chunk)), size))
			copy(grown, buf)
			buf = grown
		}
		buf = append(buf, chunk...)
	}
	if len(buf) != size {
		return nil, nil, status.Errorf(codes.InvalidArgument, "received %d bytes; the header announced %d", len(buf), size)
	}
	if sum := publish.SHA256(buf); !strings.EqualFold(sum, hdr.GetSha256()) {
		return nil, nil, status.Errorf(codes.InvalidArgument, "archive sha256 is %s; the header says %s", sum, hdr.GetSha256())
	}
	return hdr, buf, nil
}

// problemsStatus makes an InvalidArgument status that lists every problem,
// one "path: field: reason" a line, and carries them as BadRequest details.
func problemsStatus(headline string, ps catalog.Problems) error {
	var b strings.Builder
	b.WriteString(headline)
	br := &errdetails.BadRequest{}
	for _, p := range ps {
		fmt.Fprintf(&b, "\n%s: %s", p.Severity, p)
		field := p.Path
		if p.Field != "" {
			field += ": " + p.Field
		}
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: field, Description: string(p.Severity) + ": " + p.Reason})
	}
	st := status.New(codes.InvalidArgument, b.String())
	if d, err := st.WithDetails(br); err == nil {
		st = d
	}
	return st.Err()
}

func problemMessages(ps catalog.Problems) []*catalogv1.Problem {
	var out []*catalogv1.Problem
	for _, p := range ps {
		out = append(out, &catalogv1.Problem{Path: p.Path, Field: p.Field, Reason: p.Reason, Severity: string(p.Severity), Package: p.Package, Bundle: p.Bundle})
	}
	return out
}

func (p *Publisher) publish(stream grpc.ClientStreamingServer[catalogv1.PublishRequest, catalogv1.PublishResponse]) (*catalogv1.PublishResponse, error) {
	ctx := stream.Context()
	g := grantFrom(ctx)
	if g == nil {
		return nil, status.Error(codes.Unauthenticated, "no bearer token")
	}
	// A turn to receive: at most MaxConcurrentPublishes archives are
	// buffered at once; the others wait until their deadline.
	select {
	case p.turns <- struct{}{}:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	defer func() { <-p.turns }()
	var held int
	if p.metrics != nil {
		p.metrics.uploads.Inc()
		defer func() {
			p.metrics.uploads.Dec()
			p.metrics.uploadBytes.Sub(float64(held))
		}()
	}
	hdr, archive, err := p.receive(stream, g, func(n int) {
		held += n
		if p.metrics != nil {
			p.metrics.uploadBytes.Add(float64(n))
		}
	})
	if err != nil {
		return nil, err
	}
	files, err := publish.Unpack(ctx, archive)
	if errors.Is(err, publish.ErrTooLarge) {
		return nil, status.Errorf(codes.ResourceExhausted, "%v", err)
	}
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	info, problems := catalog.ValidateBundle(files.FS())
	if info == nil {
		return nil, problemsStatus(fmt.Sprintf("invalid bundle: %d errors", len(problems.Errors())), problems)
	}
	version := info.Version.String()
	if hdr.GetPackage() != "" && hdr.GetPackage() != info.Package {
		return nil, status.Errorf(codes.InvalidArgument, "header names package %q, the bundle is of package %q", hdr.GetPackage(), info.Package)
	}
	if hdr.GetVersion() != "" {
		if v, err := catalog.ParseVersion(hdr.GetVersion()); err != nil || !v.EQ(info.Version) {
			return nil, status.Errorf(codes.InvalidArgument, "header names version %q, the bundle's version is %s", hdr.GetVersion(), version)
		}
	}
	if !g.Allows(info.Package) {
		return nil, status.Errorf(codes.PermissionDenied, "the token may not publish package %q", info.Package)
	}
	digest := files.Digest()
	rec := &publish.Record{
		Package: info.Package, Version: version, Name: info.Name, Digest: digest,
		Channels: info.Channels, PublishedAt: time.Now().UTC(), Files: files,
	}
	resp := &catalogv1.PublishResponse{
		Package: info.Package, Version: version, Name: info.Name, Digest: digest,
		Warnings: problemMessages(problems),
	}
	key := info.Package + "/" + version
	err = p.reloader.Update(ctx, func(load LoadFunc) (*catalog.Catalog, error) {
		cur := p.reloader.holder.Catalog()
		p.mu.RLock()
		prev := p.bundles[key]
		p.mu.RUnlock()
		if prev != nil {
			if prev.Digest != digest {
				return nil, status.Errorf(codes.AlreadyExists,
					"%s %s is already published with digest %s; this bundle has digest %s. Published versions are immutable: publish a new version",
					info.Package, version, prev.Digest, digest)
			}
			resp.Unchanged = true
			resp.CatalogDigest = cur.Digest
			resp.Channels = servedChannels(cur, info)
			return nil, nil
		}
		if pkg := cur.Package(info.Package); pkg != nil {
			if b := pkg.BundleByVersion(info.Version); b != nil {
				if b.Digest() == info.Digest {
					resp.Unchanged = true
					resp.CatalogDigest = cur.Digest
					resp.Channels = b.Channels
					return nil, nil
				}
				return nil, status.Errorf(codes.AlreadyExists,
					"%s %s is already served from %s with bundle digest %s; this bundle has bundle digest %s. Publish a new version",
					info.Package, version, b.Source, b.Digest(), info.Digest)
			}
		}
		// Scope: the bundle may not claim an API another package provides
		// unless the token covers that package too.
		if err := publish.CheckClaims(cur, info, g); err != nil {
			return nil, status.Errorf(codes.PermissionDenied, "%s %s claims APIs of other packages:\n%v", info.Package, version, err)
		}
		p.mu.RLock()
		next := make(map[string]*publish.Record, len(p.bundles)+1)
		for k, v := range p.bundles {
			next[k] = v
		}
		deps := p.deprecations
		p.mu.RUnlock()
		next[key] = rec
		c, err := load(ctx, sourcesOf(next, deps))
		if err != nil {
			var se *catalog.StrictError
			if errors.As(err, &se) {
				return nil, problemsStatus("the catalog would be refused in strict mode with this bundle:", se.Problems.Errors())
			}
			return nil, status.Errorf(codes.Internal, "loading the catalog with this bundle: %v", err)
		}
		if bad := newErrors(cur, c, info.Package); len(bad) > 0 || servedBundle(c, info) == nil {
			if len(bad) == 0 {
				bad = c.Problems.Errors()
			}
			return nil, problemsStatus(fmt.Sprintf("%s %s is valid but the catalog would not serve it as published:", info.Package, version), bad)
		}
		if _, err := p.store.Put(rec); err != nil {
			return nil, status.Errorf(codes.Internal, "storing the bundle: %v", err)
		}
		p.mu.Lock()
		p.bundles[key] = rec
		p.mu.Unlock()
		resp.CatalogDigest = c.Digest
		resp.Channels = servedBundle(c, info).Channels
		return c, nil
	})
	if err != nil {
		if _, ok := status.FromError(err); !ok {
			err = status.Errorf(codes.Internal, "%v", err)
		}
		return nil, err
	}
	return resp, nil
}

func servedBundle(c *catalog.Catalog, info *catalog.BundleInfo) *catalog.Bundle {
	pkg := c.Package(info.Package)
	if pkg == nil {
		return nil
	}
	b := pkg.Bundle(info.Name)
	if b == nil || !b.Version.EQ(info.Version) {
		return nil
	}
	return b
}

func servedChannels(c *catalog.Catalog, info *catalog.BundleInfo) []string {
	if b := servedBundle(c, info); b != nil {
		return b.Channels
	}
	return nil
}

// newErrors lists the errors of candidate, about pkg or about no package in
// particular, that cur does not have: what adding a bundle would break.
func newErrors(cur, candidate *catalog.Catalog, pkg string) catalog.Problems {
	had := map[string]bool{}
	for _, p := range cur.Problems.Errors() {
		had[p.String()] = true
	}
	var out catalog.Problems
	for _, p := range candidate.Problems.Errors() {
		if (p.Package == pkg || p.Package == "") && !had[p.String()] {
			out = append(out, p)
		}
	}
	return out
}

// Deprecate implements CatalogService.Deprecate.
func (s *CatalogServer) Deprecate(ctx context.Context, req *catalogv1.DeprecateRequest) (*catalogv1.DeprecateResponse, error) {
	if s.publisher == nil {
		return nil, status.Error(codes.Unimplemented, "publishing is not enabled on this server (start catalogd serve with --data-dir and --token-file)")
	}
	resp, d, err := s.publisher.deprecate(ctx, req)
	if err != nil {
		result := "error"
		switch status.Code(err) {
		case codes.InvalidArgument, codes.NotFound:
			result = "invalid"
		case codes.PermissionDenied, codes.Unauthenticated:
			result = "denied"
		}
		s.publisher.countDeprecate(result)
		s.publisher.log.Info("deprecate refused", "code", status.Code(err).String(), "token", tokenID(ctx), "error", status.Convert(err).Message())
		return nil, err
	}
	s.publisher.countDeprecate("deprecated")
	s.publisher.log.Info("deprecated", "package", d.Package, "schema", d.Schema, "name", d.Name, "message", d.Message,
		"token", tokenID(ctx), "catalogDigest", resp.GetCatalogDigest())
	return resp, nil
}

func (p *Publisher) deprecate(ctx context.Context, req *catalogv1.DeprecateRequest) (*catalogv1.DeprecateResponse, publish.Deprecation, error) {
	g := grantFrom(ctx)
	d := publish.Deprecation{Package: req.GetPackage(), Message: strings.TrimSpace(req.GetMessage()), At: time.Now().UTC()}
	switch {
	case g == nil:
		return nil, d, status.Error(codes.Unauthenticated, "no bearer token")
	case d.Package == "":
		return nil, d, status.Error(codes.InvalidArgument, "package is required")
	case d.Message == "":
		return nil, d, status.Error(codes.InvalidArgument, "message is required: it tells users what to do instead")
	case len(d.Message) > p.limits.MaxDeprecationMessage:
		return nil, d, status.Errorf(codes.InvalidArgument, "message is %d bytes; at most %d are accepted", len(d.Message), p.limits.MaxDeprecationMessage)
	}
	if err := checkMessageText(d.Message); err != nil {
		return nil, d, status.Errorf(codes.InvalidArgument, "message: %v", err)
	}
	n := 0
	for _, v := range []string{req.GetBundle(), req.GetVersion(), req.GetChannel()} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return nil, d, status.Error(codes.InvalidArgument, "at most one of bundle, version and channel")
	}
	if !g.Allows(d.Package) {
		return nil, d, status.Errorf(codes.PermissionDenied, "the token may not change package %q", d.Package)
	}
	resp := &catalogv1.DeprecateResponse{}
	err := p.reloader.Update(ctx, func(load LoadFunc) (*catalog.Catalog, error) {
		cur := p.reloader.holder.Catalog()
		pkg := cur.Package(d.Package)
		if pkg == nil {
			return nil, status.Errorf(codes.NotFound, "package %q not found", d.Package)
		}
		switch {
		case req.GetChannel() != "":
			if pkg.Channel(req.GetChannel()) == nil {
				return nil, status.Errorf(codes.NotFound, "channel %q not found in package %q", req.GetChannel(), d.Package)
			}
			d.Schema, d.Name = publish.SchemaChannel, req.GetChannel()
		case req.GetBundle() != "":
			if pkg.Bundle(req.GetBundle()) == nil {
				return nil, status.Errorf(codes.NotFound, "bundle %q not found in package %q", req.GetBundle(), d.Package)
			}
			d.Schema, d.Name = publish.SchemaBundle, req.GetBundle()
		case req.GetVersion() != "":
			v, err := catalog.ParseVersion(req.GetVersion())
			if err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "version: %v", err)
			}
			b := pkg.BundleByVersion(v)
			if b == nil {
				return nil, status.Errorf(codes.NotFound, "version %s not found in package %q", v, d.Package)
			}
			d.Schema, d.Name = publish.SchemaBundle, b.Name
		default:
			d.Schema = publish.SchemaPackage
		}
		p.mu.RLock()
		_, replaces := p.deprecations[depKey(d)]
		count := len(p.deprecations)
		p.mu.RUnlock()
		if !replaces && count >= p.limits.MaxDeprecations {
			return nil, status.Errorf(codes.ResourceExhausted, "%d deprecations are stored, the most this server keeps; replace an existing one instead", count)
		}
		if err := p.store.PutDeprecation(d); err != nil {
			return nil, status.Errorf(codes.Internal, "storing the deprecation: %v", err)
		}
		p.mu.Lock()
		next := make(map[string]publish.Deprecation, len(p.deprecations)+1)
		for k, v := range p.deprecations {
			next[k] = v
		}
		next[depKey(d)] = d
		p.deprecations = next
		bundles := p.bundles
		p.mu.Unlock()
		c, err := load(ctx, sourcesOf(bundles, next))
		if err != nil {
			// Stored: the next reload that succeeds serves it.
			return nil, status.Errorf(codes.Internal, "the deprecation is stored, but loading the catalog failed: %v", err)
		}
		resp.CatalogDigest = c.Digest
		return c, nil
	})
	return resp, d, err
}

// checkMessageText accepts text without control characters other than
// newline and tab: installers and terminals show deprecation messages as
// they are. (gRPC has checked that it is UTF-8.)
func checkMessageText(msg string) error {
	for i, r := range msg {
		if r != '\n' && r != '\t' && (unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r)) {
			return fmt.Errorf("control character %U at byte %d", r, i)
		}
	}
	return nil
}

// WithPublisher enables Publish and Deprecate, with bearer-token
// authentication on those two methods; every other method stays open.
func WithPublisher(p *Publisher) ServerOption { return func(o *serverOptions) { o.publisher = p } }

// WithGRPCOptions adds gRPC server options, such as TLS credentials.
func WithGRPCOptions(opts ...grpc.ServerOption) ServerOption {
	return func(o *serverOptions) { o.grpcOpts = append(o.grpcOpts, opts...) }
}
