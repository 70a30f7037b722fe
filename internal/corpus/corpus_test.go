package corpus

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// makeTarball writes files (path -> content) into a .tar.xz and returns it.
func makeTarball(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	src := t.TempDir()
	for p, content := range files {
		full := filepath.Join(src, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), name)
	if b, err := exec.Command("tar", "-cJf", out, "-C", src, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, b)
	}
	return out
}

func TestFile(t *testing.T) {
	parent := t.TempDir()
	module := filepath.Join(parent, "main")
	corpusDir := filepath.Join(parent, "shared", "corpus")
	for _, d := range []string{module, filepath.Join(corpusDir, "a-dir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(corpusDir, Community), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file string
		want       string
		absent     bool
		wantErr    string
	}{
		{name: "present", file: Community, want: filepath.Join(corpusDir, Community)},
		{name: "absent", file: "other.tar.xz", absent: true, wantErr: "other.tar.xz is absent"},
		{name: "a directory", file: "a-dir", wantErr: "is a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := File(module+string(filepath.Separator), tc.file)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("File = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("File error = %v, want one containing %q", err, tc.wantErr)
			}
			if errors.Is(err, ErrAbsent) != tc.absent {
				t.Errorf("errors.Is(%v, ErrAbsent) = %v, want %v", err, !tc.absent, tc.absent)
			}
		})
	}
}

func TestExtract(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		files    map[string]string
		wantRoot string // relative to the unpacked folder
	}{
		{name: "lone top-level folder", files: map[string]string{"cat/p/catalog.json": "{}"}, wantRoot: "cat"},
		{name: "folders and files", files: map[string]string{"a/catalog.json": "{}", "b/catalog.json": "{}"}, wantRoot: "."},
		{name: "a folder beside a file", files: map[string]string{"a/catalog.json": "{}", "README": "r"}, wantRoot: "."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tarball := makeTarball(t, "cat.tar.xz", tc.files)
			cache := t.TempDir()
			got, err := Extract(ctx, tarball, cache)
			if err != nil {
				t.Fatal(err)
			}
			dest := filepath.Join(cache, "corpus", "cat")
			if want := filepath.Join(dest, tc.wantRoot); got != want {
				t.Errorf("root = %s, want %s", got, want)
			}
			for p, content := range tc.files {
				b, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(p)))
				if err != nil || string(b) != content {
					t.Errorf("%s: %q, %v; want %q", p, b, err, content)
				}
			}
			// Unpacked once: without the tarball, a second call still answers.
			if err := os.Remove(tarball); err != nil {
				t.Fatal(err)
			}
			again, err := Extract(ctx, tarball, cache)
			if err != nil || again != got {
				t.Errorf("second Extract = %s, %v; want %s", again, err, got)
			}
			if parts, _ := filepath.Glob(dest + ".part-*"); len(parts) > 0 {
				t.Errorf("left over: %v", parts)
			}
		})
	}
}

func TestExtractReplacesAnInterruptedUnpack(t *testing.T) {
	tarball := makeTarball(t, "cat.tar.xz", map[string]string{"cat/p/catalog.json": "{}"})
	cache := t.TempDir()
	dest := filepath.Join(cache, "corpus", "cat")
	// What an unpack killed half-way leaves: files, no stamp.
	if err := os.MkdirAll(filepath.Join(dest, "cat", "stale"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Extract(context.Background(), tarball, cache)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(got, "stale")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the interrupted unpack's files are still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(got, "p", "catalog.json")); err != nil {
		t.Error(err)
	}
}

func TestExtractConcurrently(t *testing.T) {
	tarball := makeTarball(t, "cat.tar.xz", map[string]string{"cat/p/catalog.json": "{}"})
	cache := t.TempDir()
	var wg sync.WaitGroup
	roots := make([]string, 4)
	errs := make([]error, len(roots))
	for i := range roots {
		wg.Go(func() { roots[i], errs[i] = Extract(context.Background(), tarball, cache) })
	}
	wg.Wait()
	for i := range roots {
		if errs[i] != nil || roots[i] != roots[0] {
			t.Errorf("Extract #%d = %s, %v; want %s", i, roots[i], errs[i], roots[0])
		}
	}
	if _, err := os.Stat(filepath.Join(roots[0], "p", "catalog.json")); err != nil {
		t.Error(err)
	}
}

func TestExtractErrors(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.tar.xz")
	if err := os.WriteFile(broken, []byte("not xz"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, tarball, wantErr string
	}{
		{name: "missing tarball", tarball: filepath.Join(dir, "missing.tar.xz"), wantErr: "missing.tar.xz"},
		{name: "not an archive", tarball: broken, wantErr: "extracting " + broken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			_, err := Extract(context.Background(), tc.tarball, cache)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Extract error = %v, want one containing %q", err, tc.wantErr)
			}
			if ents, _ := os.ReadDir(filepath.Join(cache, "corpus")); len(ents) > 1 { // the lock file only
				t.Errorf("left in the cache: %v", ents)
			}
		})
	}
}
