package catalog

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// logLines collects what a logger writes.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, args)
	}, funcr.Options{})
}

func (l *logLines) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// indexFixture writes a file-based catalog with on-disk manifests, a
// deprecation, an unknown schema and a problem (an entry whose bundle is
// missing), and returns its source with the given fingerprint.
func indexFixture(t *testing.T, fingerprint string) Source {
	t.Helper()
	dir := t.TempDir()
	content := docs(
		fbcPkg("foo", "stable"),
		fbcCh("foo", "stable", entry("foo.v1.0.0"), entry("foo.v1.1.0", "replaces", "foo.v1.0.0", "skipRange", "<1.1.0"), entry("foo.v9.0.0", "replaces", "foo.v1.1.0")),
		fbcB("foo", "foo.v1.0.0", "1.0.0", objectProp(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"}}`)),
		fbcB("foo", "foo.v1.1.0", "1.1.0", `{"type":"olm.gvk","value":{"group":"foo.example.com","version":"v1","kind":"Foo"}}`,
			objectProp(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm2"}}`)),
		`{"schema":"olm.deprecations","package":"foo","entries":[{"reference":{"schema":"olm.bundle","name":"foo.v1.0.0"},"message":"use 1.1.0"}]}`,
		`{"schema":"io.example.notes","package":"foo","name":"n","text":"hello"}`,
	)
	if err := os.WriteFile(filepath.Join(dir, "catalog.json"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return Source{Name: "catalog", Dir: dir, Format: FormatFBC, Fingerprint: fingerprint}
}

func loadWithIndex(t *testing.T, src Source, ic IndexConfig) *Catalog {
	t.Helper()
	c, err := Load(context.Background(), []Source{src}, WithIndex(ic))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sameCatalog compares what a server answers from: the model, problems and
// manifests.
func sameCatalog(t *testing.T, got, want *Catalog) {
	t.Helper()
	if got.Digest != want.Digest {
		t.Errorf("digest %s, want %s", got.Digest, want.Digest)
	}
	if !reflect.DeepEqual(got.Problems, want.Problems) {
		t.Errorf("problems %v, want %v", got.Problems, want.Problems)
	}
	if !reflect.DeepEqual(got.Others, want.Others) {
		t.Errorf("others %v, want %v", got.Others, want.Others)
	}
	if got.Counts() != want.Counts() {
		t.Errorf("counts %v, want %v", got.Counts(), want.Counts())
	}
	for _, wp := range want.Packages {
		gp := got.Package(wp.Name)
		if gp == nil {
			t.Fatalf("package %s missing", wp.Name)
		}
		for _, wb := range wp.Bundles {
			gb := gp.Bundle(wb.Name)
			if gb == nil {
				t.Fatalf("bundle %s missing", wb.Name)
			}
			if !reflect.DeepEqual(gb.RegistryProperties(), wb.RegistryProperties()) || gb.ManifestsDigest() != wb.ManifestsDigest() ||
				!reflect.DeepEqual(gb.Deprecation, wb.Deprecation) || !reflect.DeepEqual(gb.Channels, wb.Channels) {
				t.Errorf("bundle %s differs", wb.Name)
			}
			gm, gerr := gb.Manifests()
			wm, werr := wb.Manifests()
			if gerr != nil || werr != nil || !reflect.DeepEqual(gm, wm) {
				t.Errorf("bundle %s manifests: %v (%v), want %v (%v)", wb.Name, gm, gerr, wm, werr)
			}
		}
		for _, wc := range wp.Channels {
			gc := gp.Channel(wc.Name)
			if gc == nil || gc.Head != wc.Head || len(gc.Entries) != len(wc.Entries) {
				t.Fatalf("channel %s differs", wc.Name)
			}
			for i, e := range wc.Entries {
				v := e.Bundle.Version
				if gc.Entries[i].InSkipRange(v) != e.InSkipRange(v) || gc.Entries[i].Replaces != e.Replaces {
					t.Errorf("channel %s entry %s differs", wc.Name, e.Name)
				}
			}
		}
	}
	if !reflect.DeepEqual(got.Providers(GVK{"foo.example.com", "v1", "Foo"})[0].Name, want.Providers(GVK{"foo.example.com", "v1", "Foo"})[0].Name) {
		t.Error("providers differ")
	}
}

func TestIndexRoundTrip(t *testing.T) {
	src := indexFixture(t, "sha256:aaa")
	ic := IndexConfig{Dir: t.TempDir()}
	parsed, err := Load(context.Background(), []Source{src})
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed.Problems) == 0 {
		t.Fatal("the fixture should have a problem, to check that problems survive the index")
	}
	first := loadWithIndex(t, src, ic)
	second := loadWithIndex(t, src, ic)
	if first.FromIndex || !second.FromIndex {
		t.Fatalf("FromIndex: first %t, second %t; want false, true", first.FromIndex, second.FromIndex)
	}
	sameCatalog(t, second, parsed)
}

func TestIndexUnusableIsIgnoredAndRebuilt(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, idx string, src Source)
		logged string
	}{
		{"truncated", func(t *testing.T, idx string, _ Source) {
			st, _ := os.Stat(idx)
			if err := os.Truncate(idx, st.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, "truncated or overlong"},
		{"truncated header", func(t *testing.T, idx string, _ Source) {
			if err := os.Truncate(idx, 5); err != nil {
				t.Fatal(err)
			}
		}, "truncated header"},
		{"corrupt payload", func(t *testing.T, idx string, _ Source) {
			editFile(t, idx, func(b []byte) { b[len(b)-10] ^= 0xff })
		}, "checksum mismatch"},
		{"other version", func(t *testing.T, idx string, _ Source) {
			editFile(t, idx, func(b []byte) { binary.BigEndian.PutUint32(b[len(indexMagic):], IndexFormatVersion+1) })
		}, "format version"},
		{"other build version", func(t *testing.T, idx string, _ Source) {
			editFile(t, idx, func(b []byte) { binary.BigEndian.PutUint32(b[len(indexMagic)+4:], buildVersion+1) })
		}, "built by build version"},
		{"appended to", func(t *testing.T, idx string, _ Source) {
			editFile(t, idx, func(b []byte) { copy(b[len(b)-4:], "tail") })
			f, err := os.OpenFile(idx, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString("more"); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}, "truncated or overlong"},
		{"payload that does not decode, checksum updated", func(t *testing.T, idx string, _ Source) {
			editFile(t, idx, func(b []byte) {
				payload := b[indexHeader:]
				for i := range payload {
					payload[i] = 0xff
				}
				binary.BigEndian.PutUint32(b[len(indexMagic)+16:], crc32.Checksum(payload, indexCRC))
			})
		}, "decoding: at byte"},
		{"not an index", func(t *testing.T, idx string, _ Source) {
			if err := os.WriteFile(idx, []byte(strings.Repeat("x", 100)), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not an index file"},
		{"catalog file changed", func(t *testing.T, _ string, src Source) {
			f := filepath.Join(src.Dir, "catalog.json")
			later := time.Now().Add(time.Minute)
			if err := os.Chtimes(f, later, later); err != nil {
				t.Fatal(err)
			}
		}, "changed since it was indexed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := indexFixture(t, "sha256:aaa")
			var logs logLines
			ic := IndexConfig{Dir: t.TempDir(), Log: logs.logger()}
			loadWithIndex(t, src, ic)
			key := indexKey([]Source{src})
			tt.damage(t, ic.path(key), src)
			parsed, err := Load(context.Background(), []Source{src})
			if err != nil {
				t.Fatal(err)
			}
			again := loadWithIndex(t, src, ic)
			if again.FromIndex {
				t.Fatal("a damaged index was used")
			}
			if !logs.contains("ignoring catalog index") || !logs.contains(tt.logged) {
				t.Errorf("log %q does not say the index was ignored because of %q", logs.lines, tt.logged)
			}
			sameCatalog(t, again, parsed)
			rebuilt := loadWithIndex(t, src, ic)
			if !rebuilt.FromIndex {
				t.Fatal("the index was not rebuilt")
			}
			sameCatalog(t, rebuilt, parsed)
		})
	}
}

func editFile(t *testing.T, p string, edit func([]byte)) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	edit(b)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func indexFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestIndexPrunedToCurrentAndPrevious(t *testing.T) {
	ic := IndexConfig{Dir: t.TempDir()}
	a, b, c := indexFixture(t, "sha256:a"), indexFixture(t, "sha256:b"), indexFixture(t, "sha256:c")
	age := func(s Source, d time.Duration) {
		at := time.Now().Add(-d)
		if err := os.Chtimes(ic.path(indexKey([]Source{s})), at, at); err != nil {
			t.Fatal(err)
		}
	}
	loadWithIndex(t, a, ic)
	age(a, 2*time.Hour)
	loadWithIndex(t, b, ic)
	age(b, time.Hour)
	stale := filepath.Join(ic.Dir, "x"+indexSuffix+".tmp123")
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	loadWithIndex(t, c, ic)
	want := []string{indexKey([]Source{b}) + indexSuffix, indexKey([]Source{c}) + indexSuffix}
	got := indexFiles(t, ic.Dir)
	if !sameSet(got, want) {
		t.Fatalf("files after serving a, b, c: %v, want %v", got, want)
	}
	// Going back to b reads its index and keeps c as the previous one.
	if !loadWithIndex(t, b, ic).FromIndex {
		t.Fatal("b was not read from its index")
	}
	if got := indexFiles(t, ic.Dir); !sameSet(got, want) {
		t.Fatalf("files after serving b again: %v, want %v", got, want)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		if !m[s] {
			return false
		}
	}
	return true
}

func TestIndexNotWritten(t *testing.T) {
	tests := []struct {
		name   string
		src    func(t *testing.T) Source
		max    int64
		logged string
	}{
		{"no fingerprint", func(t *testing.T) Source { return indexFixture(t, "") }, 0, ""},
		{"over the size limit", func(t *testing.T) Source { return indexFixture(t, "sha256:a") }, 64, "over the limit of 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logLines
			ic := IndexConfig{Dir: t.TempDir(), MaxBytes: tt.max, Log: logs.logger()}
			src := tt.src(t)
			parsed, err := Load(context.Background(), []Source{src})
			if err != nil {
				t.Fatal(err)
			}
			c := loadWithIndex(t, src, ic)
			if c.FromIndex {
				t.Fatal("read from an index")
			}
			sameCatalog(t, c, parsed)
			if files := indexFiles(t, ic.Dir); len(files) != 0 {
				t.Errorf("index files written: %v", files)
			}
			if tt.logged != "" && !logs.contains(tt.logged) {
				t.Errorf("log %q does not contain %q", logs.lines, tt.logged)
			}
		})
	}
}
