package catalog

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// writeTree writes a bundle tree to a new directory on disk.
func writeTree(t *testing.T, fsys fstest.MapFS) string {
	t.Helper()
	dir := t.TempDir()
	for p, f := range fsys {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBundleTreeManifestsStayOnDisk(t *testing.T) {
	multi := bundleSpec{pkg: "foo", version: "1.1.0", replaces: "foo.v1.0.0", files: map[string]string{
		// Two objects in one file, the second one JSON.
		"manifests/extra.yaml": "# leading comment\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\ndata:\n  k: |\n    folded\n    text\n---\n{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"two\"}}\n",
	}}
	fsys := treeFS(bundleSpec{pkg: "foo", version: "1.0.0"}, multi)
	dir := writeTree(t, fsys)
	onDisk, err := Load(context.Background(), []Source{{Name: "operators", Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	inMemory := loadFS(t, fsys)
	if onDisk.Digest != inMemory.Digest {
		t.Errorf("catalog digest %s on disk, %s in memory", onDisk.Digest, inMemory.Digest)
	}
	if len(onDisk.Problems) != 0 {
		t.Fatalf("problems: %v", problemStrings(onDisk))
	}
	p, want := onDisk.Package("foo"), inMemory.Package("foo")
	for _, name := range []string{"foo.v1.0.0", "foo.v1.1.0"} {
		b := p.Bundle(name)
		if _, ok := b.manifests.(*dirManifests); !ok {
			t.Fatalf("%s: manifests kept as %T, want them on disk", name, b.manifests)
		}
		got, err := b.Manifests()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		exp, _ := want.Bundle(name).Manifests()
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("%s: manifests read again from disk differ from those loaded:\n got %v\nwant %v", name, got, exp)
		}
		if b.ManifestsDigest() != want.Bundle(name).ManifestsDigest() {
			t.Errorf("%s: manifests digest %s, want %s", name, b.ManifestsDigest(), want.Bundle(name).ManifestsDigest())
		}
	}
	if n := len(mustManifests(t, p.Bundle("foo.v1.1.0"))); n != 4 {
		t.Errorf("foo.v1.1.0 has %d objects, want 4 (CSV, CRD, ConfigMap, Secret)", n)
	}

	extra := filepath.Join(dir, "foo", "1.1.0", "manifests", "extra.yaml")
	st, err := os.Stat(extra)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content string
		modTime time.Time
		wantErr string
	}{
		{
			name:    "same size and time, other content",
			content: strings.Replace(string(fsys["foo/1.1.0/manifests/extra.yaml"].Data), "name: one", "name: two", 1),
			modTime: st.ModTime(),
			wantErr: "no longer hash to " + p.Bundle("foo.v1.1.0").ManifestsDigest(),
		},
		{
			name:    "grown",
			content: string(fsys["foo/1.1.0/manifests/extra.yaml"].Data) + "# more\n",
			modTime: st.ModTime(),
			wantErr: extra + " changed since the catalog was loaded",
		},
		{
			name:    "touched",
			content: string(fsys["foo/1.1.0/manifests/extra.yaml"].Data),
			modTime: st.ModTime().Add(time.Second),
			wantErr: extra + " changed since the catalog was loaded",
		},
		{
			name:    "restored",
			content: string(fsys["foo/1.1.0/manifests/extra.yaml"].Data),
			modTime: st.ModTime(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(extra, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(extra, tc.modTime, tc.modTime); err != nil {
				t.Fatal(err)
			}
			// Without a manifest cache, every call reads the files.
			_, err := p.Bundle("foo.v1.1.0").manifests.(*dirManifests).decode()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func mustManifests(t *testing.T, b *Bundle) []Manifest {
	t.Helper()
	ms, err := b.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestYAMLBlank: a document is blank exactly when stripping its comments
// leaves nothing.
func TestYAMLBlank(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want bool
	}{
		{name: "empty", doc: "", want: true},
		{name: "blank lines", doc: "\n  \n\t\n", want: true},
		{name: "comments", doc: "# one\n  # two\n", want: true},
		{name: "comment without a newline", doc: "# one", want: true},
		{name: "a key", doc: "# head\nkind: ConfigMap\n", want: false},
		{name: "a key without a newline", doc: "kind: ConfigMap", want: false},
		{name: "a value after a comment line", doc: "#\n  - a\n", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := yamlBlank([]byte(tt.doc))
			if got != tt.want {
				t.Errorf("yamlBlank(%q) = %v, want %v", tt.doc, got, tt.want)
			}
		})
	}
}
