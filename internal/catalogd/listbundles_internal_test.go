package catalogd

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
)

// TestListBundlesKeptWithinBound: the ListBundles answer is kept while it
// fits in the bound, in the answer file when there is one, and built anew
// for every call above it; the entries are the same either way, also when
// the answer file starts over while the kept answer is being sent, whether
// its entries are sent from the file one by one (the sample catalog's
// carry their objects) or copied out a run at a time (small entries).
func TestListBundlesKeptWithinBound(t *testing.T) {
	sample, err := catalog.Load(context.Background(), []catalog.Source{{Name: "bundles", FS: bundles.FS}})
	if err != nil {
		t.Fatal(err)
	}
	small := manyBundlesCatalog(t, t.TempDir(), 600)
	catalogs := map[string]*catalog.Catalog{"sample": sample, "small entries": small}
	// list sends c's answer; after the entry numbered resetAfter (from 1;
	// 0: never) it empties the answer file.
	list := func(s *RegistryServer, c *catalog.Catalog, resetAfter int) [][]byte {
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
	want := map[string][][]byte{}
	tests := []struct {
		name       string
		catalog    string
		max        int64
		file       bool
		resetAfter int
		wantKept   bool
		wantInFile bool
	}{
		{name: "within the bound", catalog: "sample", max: maxKeptList, wantKept: true},
		{name: "over the bound", catalog: "sample", max: 1, wantKept: false},
		{name: "within the bound, in the answer file", catalog: "sample", max: maxKeptList, file: true, wantKept: true, wantInFile: true},
		{name: "over the bound, with an answer file", catalog: "sample", max: 1, file: true, wantKept: false},
		{name: "answer file started over while sending", catalog: "sample", max: maxKeptList, file: true, resetAfter: 2, wantKept: true, wantInFile: true},
		{name: "small entries within the bound", catalog: "small entries", max: maxKeptList, wantKept: true},
		{name: "small entries in the answer file", catalog: "small entries", max: maxKeptList, file: true, wantKept: true, wantInFile: true},
		{name: "small entries, answer file started over in the first run", catalog: "small entries", max: maxKeptList, file: true, resetAfter: 2, wantKept: true, wantInFile: true},
		{name: "small entries, answer file started over in a later run", catalog: "small entries", max: maxKeptList, file: true, resetAfter: 300, wantKept: true, wantInFile: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := catalogs[tt.catalog]
			h := NewHolder(c)
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
			first := list(s, c, 0)
			before := keptNow()
			// The second call sends the kept answer, if any.
			second := list(s, c, tt.resetAfter)
			// Read back from the file, not built again, unless the file
			// started over.
			now := keptNow()
			if rebuilt := now.loc.gen != before.loc.gen || now.loc.off != before.loc.off; tt.wantInFile && rebuilt != (tt.resetAfter > 0) {
				t.Errorf("answer built again: %v, want %v", rebuilt, tt.resetAfter > 0)
			}
			third := list(s, c, 0)
			if len(first) < 3 {
				t.Fatalf("%d entries, want at least 3", len(first))
			}
			if want[tt.catalog] == nil {
				want[tt.catalog] = first
			}
			want := want[tt.catalog]
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

// TestSendKeptListStopsAtTheFailedSend: a send that fails ends the answer,
// in a run of small entries or at a large one, and the count returned is
// of the entries sent before it.
func TestSendKeptListStopsAtTheFailedSend(t *testing.T) {
	c := manyBundlesCatalog(t, t.TempDir(), 600)
	s := NewRegistryServer(NewHolder(c), WithAnswerBudget(1<<20), WithAnswerFile(t.TempDir(), 0))
	t.Cleanup(func() { _ = s.Close() })
	if err := s.listBundles(c, func(*encodedMessage) error { return nil }); err != nil {
		t.Fatal(err)
	}
	s.listMu.Lock()
	list := s.list
	s.listMu.Unlock()
	if !list.inFile || list.len() != 600 {
		t.Fatalf("kept list: in the file %v, %d entries; want in the file, 600", list.inFile, list.len())
	}
	failed := errors.New("connection closed")
	for _, failAt := range []int{0, 1, 57, 599} {
		sent := 0
		n, err := s.sendKeptList(list, func(*encodedMessage) error {
			if sent == failAt {
				return failed
			}
			sent++
			return nil
		})
		if !errors.Is(err, failed) || n != failAt || sent != failAt {
			t.Errorf("failing at entry %d: returned %d, %v after %d sent; want %d and the send's error", failAt, n, err, sent, failAt)
		}
	}
}
