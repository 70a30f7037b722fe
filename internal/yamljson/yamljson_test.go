package yamljson

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ferrydev/ferry/internal/corpus"
)

// check asserts that Convert agrees with the library on src and returns
// whether the fast path answered.
func check(t testing.TB, name string, src []byte) bool {
	t.Helper()
	want, wantErr := yaml.YAMLToJSON(src)
	var d Doc
	v, ok := d.Parse(src)
	if ok {
		got, jsOK := v.JSON()
		if jsOK {
			if wantErr != nil {
				t.Errorf("%s: fast path answered %s, the library fails: %v\n%q", name, got, wantErr, src)
			} else if !bytes.Equal(got, want) {
				t.Errorf("%s: fast path differs\n got %s\nwant %s\n src %q", name, got, want, src)
			}
			return true
		}
	}
	got, fast, err := Convert(src)
	if fast {
		t.Errorf("%s: Convert took the fast path where Parse refused", name)
	}
	if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
		t.Errorf("%s: fallback differs: %s, %v; want %s, %v", name, got, err, want, wantErr)
	}
	return false
}

func TestConvert(t *testing.T) {
	tests := []struct {
		name string
		src  string
		fast bool
	}{
		{"mapping", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n", true},
		{"sorted keys", "b: 1\na: 2\nA: 3\n", true},
		{"nested sequence", "a:\n  - x\n  - y: 1\n    z: [ ]\n", false},
		{"compact sequence", "a:\n- x\n- y\nb: c\n", true},
		{"sequence of mappings", "items:\n  - name: a\n    value: \"1\"\n  - name: b\n", true},
		{"sequence in sequence", "- - a\n  - b\n- c\n", true},
		{"empty value", "a:\nb: ~\nc: null\n", true},
		{"booleans", "a: yes\nb: No\nc: on\nd: OFF\ne: y\nf: true\ng: False\n", true},
		{"integers", "a: 0\nb: 42\nc: -7\nd: 0777\ne: 0x1F\nf: 1_000\ng: -0\n", true},
		{"big integer", "a: 123456789012345678901234567890\nb: 9223372036854775807\n", true},
		{"floats", "a: 1.5\nb: 1e3\nf: 1.0\ng: 6.02e+23\nh: .5\n", true},
		{"infinity", "a: .inf\n", false},
		{"timestamps", "a: 2001-12-14t21:59:43.10-05:00\nb: 2002-12-14\nc: 2001-12-14 21:59:43.10 -5\n", true},
		{"versions", "a: 0.1.0\nb: v1.2.3\nc: 1.2.3-rc.1\nd: --leader-elect\ne: -Xmx1g\n", true},
		{"html and controls", "a: \"<b>&amp;</b>\\u2028\\x01\\e\\b\\f\\t\\r\\u00e9\"\nb: '<it''s>'\n", true},
		{"quoted keys", "\"a b\": 1\n'c''d': 2\n", true},
		{"numeric key", "1: a\n", false},
		{"bool key", "yes: a\n", false},
		{"duplicate key", "a: 1\na: 2\n", false},
		{"comments", "# head\na: b # tail\n# mid\nc: 'd' # tail\ne: |  # c\n  x\n", true},
		{"literal", "a: |\n  line one\n    more\n\n  three\nb: x\n", true},
		{"literal strip keep", "a: |-\n  x\n\n\nb: |+\n  y\n\n\nc: z\n", true},
		{"literal keep at end", "a: |+\n  y\n\n", true},
		{"folded", "a: >\n  one\n  two\n\n  three\n    indented\n  four\nb: >-\n  x\n  y\n", true},
		{"empty block", "a: |\nb: >+\n\nc: 1\n", true},
		{"leading blank lines", "a: |\n\n  x\n", true},
		{"over-indented blank line", "a: |\n      \n  x\n", false},
		{"indentation indicator", "a: |2\n   x\n", false},
		{"anchor", "a: &x 1\nb: *x\n", false},
		{"tag", "a: !!str 1\n", false},
		{"merge", "a: &x {b: 1}\nc:\n  <<: *x\n", false},
		{"flow sequence", "a: [1, 'b', \"c\", d e, yes]\nb: [ ]\nc: { }\n", true},
		{"nested flow", "a: [[1]]\n", false},
		{"flow mapping", "a: {b: 1}\n", false},
		{"multi-line plain", "a: one\n  two\n\n  three # c\nb: x\n", true},
		{"multi-line plain after comment", "a: one\n  # c\n  two\n", false},
		{"multi-line quoted", "a: \"one \n  two\\\n  three\n\n  four\"\nb: 'x\n  y'\n", true},
		{"multi-line key", "\"a\n  b\": 1\n", false},
		{"tab indentation", "a:\n\tb: 1\n", false},
		{"carriage return", "a: b\r\n", false},
		{"bad indentation", "a:\n  b: 1\n c: 2\n", false},
		{"mapping value on a value", "a: b: c\n", false},
		{"plain with colon", "a: http://x:80/y\nb: a:b\n", true},
		{"unicode", "a: héllo → ☃ 😀\n", true},
		{"deep", strings.Repeat("- ", 300) + "x\n", false},
		{"many numbers", strings.Repeat("- 1.5\n", 300), false},
		{"some numbers", strings.Repeat("- 1.5\n", 200), true},
		{"root indented", "  a: 1\n  b: 2\n", true},
		{"seq entry value on next line", "-\n  a: 1\n-\n- x\n", true},
		{"document end marker", "a: 1\n...\n", false},
		{"plain with hash", "a: b#c\nd: e #f\n", true},
		{"empty quoted", "a: ''\nb: \"\"\n", true},
		{"null and bool look-alikes", "a: nil\nb: NO_SUCH\nc: trueish\nd: ~x\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fast := check(t, tt.name, []byte(tt.src))
			if fast != tt.fast {
				t.Errorf("fast path answered: %v, want %v", fast, tt.fast)
			}
		})
	}
}

func TestConvertSeed(t *testing.T) {
	src, err := os.ReadFile("testdata/operator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := bytes.TrimSuffix(src, []byte("---\n"))
	if !check(t, "operator.yaml", doc) {
		t.Error("the fast path refused testdata/operator.yaml")
	}
	if check(t, "operator.yaml with its document marker", src) {
		t.Error("the fast path answered for a stream with a document marker")
	}
}

// FuzzConvert asserts that wherever the fast path answers, it answers what
// the library answers, byte for byte, and that it never answers where the
// library fails.
func FuzzConvert(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Real manifests: the small documents of the corpus, when it is there.
	for _, doc := range corpusDocs(f) {
		if len(doc.src) <= 8<<10 {
			f.Add(doc.src)
		}
	}
	f.Add([]byte("a: |\n  x\n  y\nb:\n- 1\n- 'q'\n"))
	f.Add([]byte("a: >-\n  x\n\n   y\n  z\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 1<<16 {
			return
		}
		check(t, "fuzz", src)
	})
}

// TestCorpus converts every YAML document of the real bundle directories
// of the corpus and reports how many took the fast path.
func TestCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short")
	}
	docs, fast := 0, 0
	var fastBytes, allBytes int
	for _, doc := range corpusDocs(t) {
		docs++
		allBytes += len(doc.src)
		if check(t, doc.name, doc.src) {
			fast++
			fastBytes += len(doc.src)
		}
	}
	t.Logf("%d of %d documents (%.1f%% of %d bytes) took the fast path", fast, docs, 100*float64(fastBytes)/float64(allBytes), allBytes)
	if docs == 0 || float64(fastBytes) < 0.95*float64(allBytes) {
		t.Errorf("the fast path answered for %.1f%% of the bytes, want at least 95%%", 100*float64(fastBytes)/float64(allBytes))
	}
}

type corpusDoc struct {
	name string
	src  []byte
}

// corpusDocs returns every YAML document of the real bundle directories of
// the corpus (community-operators-messy, unpacked once into the cache); it
// skips when the corpus is absent.
func corpusDocs(tb testing.TB) []corpusDoc {
	tb.Helper()
	_, here, _, _ := runtime.Caller(0)
	dir := corpus.ForTest(tb, filepath.Join(filepath.Dir(here), "..", ".."), "community-operators-messy.tar.xz")
	if dir == "" {
		return nil
	}
	var out []corpusDoc
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, doc := range splitDocs(data) {
			out = append(out, corpusDoc{name: fmt.Sprintf("%s document %d", p, i+1), src: doc})
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// BenchmarkConvert converts every document of the corpus, with the fast
// path (fast) and with the library alone (library).
func BenchmarkConvert(b *testing.B) {
	docs := corpusDocs(b)
	size := 0
	for _, d := range docs {
		size += len(d.src)
	}
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(size))
		var d Doc
		for b.Loop() {
			for _, doc := range docs {
				if v, ok := d.Parse(doc.src); ok {
					if _, ok := v.JSON(); ok {
						continue
					}
				}
				_, _ = yaml.YAMLToJSON(doc.src) // the corpus holds invalid documents too
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		b.SetBytes(int64(size))
		for b.Loop() {
			for _, doc := range docs {
				_, _ = yaml.YAMLToJSON(doc.src) // the corpus holds invalid documents too
			}
		}
	})
}

// splitDocs splits a stream at lines starting with "---", each document
// ending with a line feed, as the bundle loader frames them.
func splitDocs(data []byte) [][]byte {
	var out [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
		if i := bytes.IndexByte(d, '\n'); i >= 0 {
			d = d[i+1:]
		} else {
			continue
		}
		if len(bytes.TrimSpace(d)) == 0 {
			continue
		}
		if d[len(d)-1] != '\n' {
			d = append(d, '\n')
		}
		out = append(out, d)
	}
	return out
}
