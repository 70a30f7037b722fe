package tenancy

import (
	"testing"
	"time"
)

func TestAllowedMemory(t *testing.T) {
	id := Identity{Namespace: "a", Name: "sa"}
	other := Identity{Namespace: "b", Name: "sa"}
	create := Permission{Verb: "create", Resource: "configmaps", Namespace: "a"}
	patch := Permission{Verb: "patch", Resource: "configmaps", Namespace: "a"}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		ttl  time.Duration
		// after is the time between remembering create for id and asking.
		after time.Duration
		ask   Identity
		p     Permission
		want  bool
	}{
		{name: "within the TTL", ttl: 10 * time.Second, after: 9 * time.Second, ask: id, p: create, want: true},
		{name: "at the TTL", ttl: 10 * time.Second, after: 10 * time.Second, ask: id, p: create, want: false},
		{name: "another permission", ttl: 10 * time.Second, ask: id, p: patch, want: false},
		{name: "another identity", ttl: 10 * time.Second, ask: other, p: create, want: false},
		{name: "disabled", ttl: 0, ask: id, p: create, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := start
			m := newAllowedMemory(tt.ttl, func() time.Time { return now }, 16)
			m.remember(id, create)
			now = now.Add(tt.after)
			if got := m.allowed(tt.ask, tt.p); got != tt.want {
				t.Errorf("allowed(%v, %v) after %v with TTL %v = %v, want %v", tt.ask, tt.p, tt.after, tt.ttl, got, tt.want)
			}
		})
	}
}

func TestAllowedMemoryBounded(t *testing.T) {
	now := time.Now()
	m := newAllowedMemory(time.Minute, func() time.Time { return now }, 8)
	for i := range 100 {
		m.remember(Identity{Namespace: "ns", Name: string(rune('a' + i%26))}, Permission{Verb: "get", Resource: "r", Namespace: string(rune('a' + i/26))})
	}
	if n := m.cache.Len(); n > 8 {
		t.Errorf("%d answers remembered, want at most 8", n)
	}
}
