package tenancy

import (
	"time"

	"github.com/ferrydev/ferry/internal/lru"
)

// Defaults of the Checker's memory of allowed reviews.
const (
	// DefaultAllowedTTL is how long a permission the API server allowed is
	// taken as allowed without asking again. An install checks its plan
	// before it records a revision and again when it applies it, moments
	// later; remembering the answers halves its access reviews. Only
	// allowed answers are kept: a refusal is asked again every time. A
	// permission revoked within this time is not missed: every write is
	// made as the ServiceAccount, and the API server authorizes it then;
	// the check only keeps an install from stopping halfway.
	DefaultAllowedTTL = 10 * time.Second
	// DefaultMaxAllowed bounds the remembered answers (identity and
	// permission each), the least recently used dropped first.
	DefaultMaxAllowed = 16384
)

// WithAllowedTTL sets how long an allowed review is remembered
// (DefaultAllowedTTL); zero or less remembers none.
func WithAllowedTTL(d time.Duration) CheckerOption {
	return func(c *Checker) { c.allowedTTL = d }
}

type allowedKey struct {
	id Identity
	p  Permission
}

// allowedMemory remembers allowed reviews until they expire. It is safe for
// concurrent use (lru.Cache is).
type allowedMemory struct {
	ttl   time.Duration
	now   func() time.Time
	cache *lru.Cache[allowedKey, time.Time]
}

func newAllowedMemory(ttl time.Duration, now func() time.Time, max int) *allowedMemory {
	if ttl <= 0 {
		return nil
	}
	return &allowedMemory{ttl: ttl, now: now, cache: lru.New[allowedKey, time.Time](int64(max))}
}

// allowed reports whether id was allowed p less than the TTL ago.
func (m *allowedMemory) allowed(id Identity, p Permission) bool {
	if m == nil {
		return false
	}
	at, ok := m.cache.Get(allowedKey{id, p})
	return ok && m.now().Sub(at) < m.ttl
}

// remember notes that id is allowed p now.
func (m *allowedMemory) remember(id Identity, p Permission) {
	if m != nil {
		m.cache.Put(allowedKey{id, p}, m.now(), 1)
	}
}
