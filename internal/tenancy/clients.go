package tenancy

import (
	"fmt"
	"sync"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/internal/lru"
)

// The installer makes a Subscription's writes as its ServiceAccount.
//
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=impersonate

// DefaultMaxClients is how many impersonating clients Clients keeps when
// WithMaxClients is not given: one per ServiceAccount in use, the least
// recently used dropped first.
const DefaultMaxClients = 256

// Clients makes and keeps clients that impersonate ServiceAccounts. It is
// safe for concurrent use.
type Clients struct {
	base *rest.Config
	opts client.Options
	// mu makes one client per identity when several reconciles ask at once.
	mu    sync.Mutex
	cache *lru.Cache[Identity, client.Client]
}

// ClientsOption refines NewClients.
type ClientsOption func(*clientsConfig)

type clientsConfig struct {
	max int
}

// WithMaxClients bounds how many clients are kept (at least 4).
func WithMaxClients(n int) ClientsOption {
	return func(c *clientsConfig) { c.max = max(n, 4) }
}

// NewClients returns Clients that copy base (the installer's own config)
// and impersonate a ServiceAccount. opts are the controller-runtime client
// options; give them the manager's Scheme and RESTMapper so that a new
// client costs no discovery. Their HTTPClient is not used: each client's
// own carries its impersonation.
func NewClients(base *rest.Config, opts client.Options, options ...ClientsOption) (*Clients, error) {
	if base == nil {
		return nil, fmt.Errorf("tenancy: no rest config")
	}
	if base.Impersonate.UserName != "" || len(base.Impersonate.Groups) > 0 || base.Impersonate.UID != "" {
		return nil, fmt.Errorf("tenancy: the installer's rest config already impersonates %q", base.Impersonate.UserName)
	}
	cfg := clientsConfig{max: DefaultMaxClients}
	for _, o := range options {
		o(&cfg)
	}
	return &Clients{base: rest.CopyConfig(base), opts: opts, cache: lru.New[Identity, client.Client](int64(cfg.max))}, nil
}

// For returns a client whose every request is made as id. Only the user
// name is impersonated: the API server then adds the ServiceAccount's
// groups itself (see Identity.Groups), which naming them would need the
// right to impersonate groups for.
func (c *Clients) For(id Identity) (client.Client, error) {
	if id.Namespace == "" || id.Name == "" {
		return nil, fmt.Errorf("tenancy: incomplete identity %q", id.Username())
	}
	if cl, ok := c.cache.Get(id); ok {
		return cl, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.cache.Get(id); ok {
		return cl, nil
	}
	cfg := rest.CopyConfig(c.base)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: id.Username()}
	// The HTTP client carries the impersonation: it is always made from
	// cfg, never shared. Its connections are shared with every client of
	// the same TLS settings by client-go's transport cache.
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("tenancy: HTTP client for %s: %w", id, err)
	}
	opts := c.opts
	opts.HTTPClient = hc
	cl, err := client.New(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("tenancy: client for %s: %w", id, err)
	}
	c.cache.Put(id, cl, 1)
	return cl, nil
}
