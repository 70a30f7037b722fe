package catalogd

import (
	"bytes"
	"context"
	"testing"

	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
)

// TestListBundlesKeptWithinBound: the ListBundles answer is kept while it
// fits in the bound, in the answer file when there is one, and built anew
// for every call above it; the entries are the same either way, also when
// the answer file starts over while the kept answer is being sent.
func TestListBundlesKeptWithinBound(t *testing.T) {
	c, err := catalog.Load(context.Background(), []catalog.Source{{Name: "bundles", FS: bundles.FS}})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHolder(c)
	// list sends the answer; after the entry numbered resetAfter (from 1;
	// 0: never) it empties the answer file.
	list := func(s *RegistryServer, resetAfter int) [][]byte {
		var out [][]byte
		if err := s.listBundles(c, func(m *encodedMessage) error {
			out = append(out, bytes.Clone(m.bytes()))
			if len(out) == resetAfter {
				s.answers.file.reset()
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	var want [][]byte
	tests := []struct {
		name       string
		max        int64
		file       bool
		resetAfter int
		wantKept   bool
		wantInFile bool
	}{
		{name: "within the bound", max: maxKeptList, wantKept: true},
		{name: "over the bound", max: 1, wantKept: false},
		{name: "within the bound, in the answer file", max: maxKeptList, file: true, wantKept: true, wantInFile: true},
		{name: "over the bound, with an answer file", max: 1, file: true, wantKept: false},
		{name: "answer file started over while sending", max: maxKeptList, file: true, resetAfter: 2, wantKept: true, wantInFile: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []RegistryOption{WithAnswerBudget(0)}
			if tt.file {
				opts = []RegistryOption{WithAnswerBudget(1 << 20), WithAnswerFile(t.TempDir(), 0)}
			}
			s := NewRegistryServer(h, opts...)
			t.Cleanup(func() { _ = s.Close() })
			if inFile, _, err := s.AnswerStore(); inFile != tt.file || err != nil {
				t.Fatalf("answer file: %v (%v), want %v", inFile, err, tt.file)
			}
			s.maxList = tt.max
			keptNow := func() keptList {
				s.listMu.Lock()
				defer s.listMu.Unlock()
				return s.list
			}
			first := list(s, 0)
			before := keptNow()
			// The second call sends the kept answer, if any.
			second := list(s, tt.resetAfter)
			// Read back from the file, not built again, unless the file
			// started over.
			now := keptNow()
			if rebuilt := now.loc.gen != before.loc.gen || now.loc.off != before.loc.off; tt.wantInFile && rebuilt != (tt.resetAfter > 0) {
				t.Errorf("answer built again: %v, want %v", rebuilt, tt.resetAfter > 0)
			}
			third := list(s, 0)
			if len(first) < 3 {
				t.Fatalf("%d entries, want at least 3", len(first))
			}
			if want == nil {
				want = first
			}
			for _, got := range [][][]byte{first, second, third} {
				if len(got) != len(want) {
					t.Fatalf("%d entries, want %d", len(got), len(want))
				}
				for i := range got {
					if !bytes.Equal(got[i], want[i]) {
						t.Errorf("entry %d differs", i)
					}
				}
			}
			s.listMu.Lock()
			kept, inFile := s.listFor == c && s.list.len() == len(want), s.list.inFile
			s.listMu.Unlock()
			if kept != tt.wantKept || inFile != tt.wantInFile {
				t.Errorf("answer kept: %v in the file: %v, want %v and %v", kept, inFile, tt.wantKept, tt.wantInFile)
			}
		})
	}
}
