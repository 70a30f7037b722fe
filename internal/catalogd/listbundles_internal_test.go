package catalogd

import (
	"bytes"
	"context"
	"testing"

	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
)

// TestListBundlesKeptWithinBound: the ListBundles answer is kept while it
// fits in the bound and built anew for every call above it, with the same
// entries either way.
func TestListBundlesKeptWithinBound(t *testing.T) {
	c, err := catalog.Load(context.Background(), []catalog.Source{{Name: "bundles", FS: bundles.FS}})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHolder(c)
	list := func(s *RegistryServer) [][]byte {
		var out [][]byte
		if err := s.listBundles(c, func(m *encodedMessage) error { out = append(out, m.b); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	var want [][]byte
	tests := []struct {
		name     string
		max      int64
		wantKept bool
	}{
		{name: "within the bound", max: maxKeptList, wantKept: true},
		{name: "over the bound", max: 1, wantKept: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewRegistryServer(h, WithAnswerBudget(0))
			s.maxList = tt.max
			first, second := list(s), list(s)
			if len(first) == 0 {
				t.Fatal("no entries")
			}
			if want == nil {
				want = first
			}
			for _, got := range [][][]byte{first, second} {
				if len(got) != len(want) {
					t.Fatalf("%d entries, want %d", len(got), len(want))
				}
				for i := range got {
					if !bytes.Equal(got[i], want[i]) {
						t.Errorf("entry %d differs", i)
					}
				}
			}
			if kept := s.listFor == c && len(s.list) == len(want); kept != tt.wantKept {
				t.Errorf("answer kept: %v, want %v", kept, tt.wantKept)
			}
		})
	}
}
