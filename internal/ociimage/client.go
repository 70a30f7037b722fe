package ociimage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Scheme prefixes a catalog that is an image: oci://REGISTRY/REPO:TAG or
// oci://REGISTRY/REPO@sha256:HEX.
const Scheme = "oci://"

// IsImageRef reports whether a --catalog value names an image.
func IsImageRef(s string) bool { return strings.HasPrefix(s, Scheme) }

// ParseReference parses an image reference, with or without the oci://
// prefix. The registry must be named (no implicit docker.io) and a tag or a
// sha256 digest given, so that what is pulled never depends on defaults.
func ParseReference(s string) (name.Reference, error) {
	raw := strings.TrimPrefix(s, Scheme)
	if raw == "" {
		return nil, fmt.Errorf("image reference %q: empty", s)
	}
	first, _, ok := strings.Cut(raw, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return nil, fmt.Errorf("image reference %q: name the registry host (REGISTRY/REPOSITORY:TAG)", s)
	}
	if !strings.Contains(raw, "@") {
		repoPart := raw[strings.LastIndex(raw, "/")+1:]
		if !strings.Contains(repoPart, ":") {
			return nil, fmt.Errorf("image reference %q: give a tag or a digest (REGISTRY/REPOSITORY:TAG or @sha256:...)", s)
		}
	}
	ref, err := name.ParseReference(raw, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", s, err)
	}
	if d, ok := ref.(name.Digest); ok && !strings.HasPrefix(d.DigestStr(), "sha256:") {
		return nil, fmt.Errorf("image reference %q: only sha256 digests are accepted", s)
	}
	return ref, nil
}

// SourceName names a catalog image in problems and catalog sources by its
// repository and digest: REGISTRY/REPOSITORY@sha256:HEX.
func SourceName(ref, digest string) string {
	r, err := ParseReference(ref)
	if err != nil {
		return strings.TrimPrefix(ref, Scheme)
	}
	return r.Context().Name() + "@" + digest
}

// Client pulls images. Its zero value is not usable: use NewClient.
type Client struct {
	remote   []remote.Option
	guard    *plainHTTPGuard
	cacheDir string
	limits   Limits
	metrics  *Metrics

	// bundleMu guards bundleBytes, the unpacked bundle bytes on disk as
	// last counted plus those pulled since; -1 until counted.
	bundleMu    sync.Mutex
	bundleBytes int64
}

type clientOptions struct {
	cacheDir     string
	dockerConfig string
	caFile       string
	insecure     []string
	limits       Limits
	metrics      *Metrics
	transport    http.RoundTripper
	userAgent    string
	timeout      time.Duration
}

// Option configures NewClient.
type Option func(*clientOptions)

// WithCacheDir sets the directory content is unpacked into (default
// DefaultCacheDir).
func WithCacheDir(dir string) Option { return func(o *clientOptions) { o.cacheDir = dir } }

// WithDockerConfig reads registry credentials from a Docker config file
// (config.json: "auths" with "auth", "username"/"password", "identitytoken"
// or "registrytoken"). Credential helpers are not run. Without it, every
// registry is spoken to anonymously.
func WithDockerConfig(path string) Option { return func(o *clientOptions) { o.dockerConfig = path } }

// WithCAFile trusts the CA certificates in the PEM file for registries, in
// addition to the system's.
func WithCAFile(path string) Option { return func(o *clientOptions) { o.caFile = path } }

// WithInsecureRegistries allows plain HTTP to these registries (host or
// host:port). Registries on a loopback address are always allowed plain
// HTTP; every other one must speak HTTPS.
func WithInsecureRegistries(hosts ...string) Option {
	return func(o *clientOptions) { o.insecure = append(o.insecure, hosts...) }
}

// WithLimits bounds what a pull may download and unpack (default DefaultLimits).
func WithLimits(l Limits) Option { return func(o *clientOptions) { o.limits = l } }

// WithMetrics records pulls.
func WithMetrics(m *Metrics) Option { return func(o *clientOptions) { o.metrics = m } }

// WithTransport sets the HTTP transport (default: a clone of
// http.DefaultTransport with the CA file's certificates).
func WithTransport(t http.RoundTripper) Option { return func(o *clientOptions) { o.transport = t } }

// WithTimeout bounds each registry request's connection and response
// headers (default 30s); a whole pull is bounded by the caller's context.
func WithTimeout(d time.Duration) Option { return func(o *clientOptions) { o.timeout = d } }

// DefaultCacheDir is <user cache dir>/ferry/images, or a directory under the
// system's temporary directory when the user has no cache directory.
func DefaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ferry", "images")
	}
	return filepath.Join(os.TempDir(), "ferry-images")
}

// NewClient returns a client; it reads the CA and Docker config files once.
func NewClient(opts ...Option) (*Client, error) {
	o := clientOptions{cacheDir: DefaultCacheDir(), limits: DefaultLimits(), userAgent: "ferry-catalogd", timeout: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	var errs []error
	if err := o.limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, h := range o.insecure {
		if h == "" || strings.ContainsAny(h, "/ ") {
			errs = append(errs, fmt.Errorf("insecure registry %q: want host or host:port", h))
		}
	}
	keychain := authn.Keychain(anonymousKeychain{})
	if o.dockerConfig != "" {
		kc, err := loadDockerConfig(o.dockerConfig)
		if err != nil {
			errs = append(errs, err)
		}
		keychain = kc
	}
	base := o.transport
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		t.DialContext = (&net.Dialer{Timeout: o.timeout, KeepAlive: 30 * time.Second}).DialContext
		t.ResponseHeaderTimeout = o.timeout
		t.TLSHandshakeTimeout = o.timeout
		if o.caFile != "" {
			pool, err := loadCAPool(o.caFile)
			if err != nil {
				errs = append(errs, err)
			}
			t.TLSClientConfig.RootCAs = pool
		}
		base = t
	} else if o.caFile != "" {
		errs = append(errs, errors.New("a CA file and a transport of one's own exclude each other"))
	}
	if o.cacheDir == "" {
		errs = append(errs, errors.New("cache directory: empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	tr := &plainHTTPGuard{base: base, insecure: o.insecure}
	return &Client{
		remote: []remote.Option{
			remote.WithAuthFromKeychain(keychain), remote.WithTransport(tr), remote.WithUserAgent(o.userAgent),
			remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}),
		},
		guard: tr, cacheDir: o.cacheDir, limits: o.limits, metrics: o.metrics, bundleBytes: -1,
	}, nil
}

// options are the remote options of one call: the client's, then ctx and extra.
func (c *Client) options(ctx context.Context, extra ...remote.Option) []remote.Option {
	return slices.Concat(c.remote, []remote.Option{remote.WithContext(ctx)}, extra)
}

// reference parses s for this client: name.Insecure lets
// go-containerregistry fall back to plain HTTP, which it only does for
// registries the transport lets through (loopback, --insecure-registry).
func (c *Client) reference(s string) (name.Reference, error) {
	ref, err := ParseReference(s)
	if err != nil {
		return nil, err
	}
	if c.guard.allowsHTTP(ref.Context().RegistryStr()) {
		return name.ParseReference(ref.String(), name.StrictValidation, name.Insecure)
	}
	return ref, nil
}

func loadCAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("registry CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// plainHTTPGuard refuses plain HTTP to registries that are neither on a
// loopback address nor named insecure, so credentials and content never
// travel unencrypted over a network by accident.
type plainHTTPGuard struct {
	base     http.RoundTripper
	insecure []string
}

func (g *plainHTTPGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allowsHTTP(req.URL.Host) {
		return nil, fmt.Errorf("%w: refusing plain HTTP to %s (only loopback registries and those given with --insecure-registry are spoken to without TLS)", ErrInsecure, req.URL.Host)
	}
	return g.base.RoundTrip(req)
}

func (g *plainHTTPGuard) allowsHTTP(hostport string) bool {
	if slices.Contains(g.insecure, hostport) {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if slices.Contains(g.insecure, host) {
		return true
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
