package ociimage

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzUnpackLayer: any layer stream, in any order with another, unpacks or
// fails without panicking, within its limits, leaving only regular files
// and directories under the kept tree (no symlink, nothing else).
func FuzzUnpackLayer(f *testing.F) {
	seed := func(entries ...entry) []byte { return tarOf(f, entries...) }
	f.Add(seed(file("configs/a.json", "{}"), symlink("configs/b.json", "a.json")), seed(file("configs/.wh.a.json", "")))
	f.Add(seed(dir("configs/d/"), hardlink("configs/x", "configs/d")), seed(file(".wh..wh..opq", "")))
	f.Add(seed(symlink("configs/s", "/configs"), file("configs/s/x", "x")), []byte("not a tar"))
	f.Add(seed(file("../escape", "x"), file("configs/../../escape", "y")), seed(symlink("configs", "/etc")))
	f.Fuzz(func(t *testing.T, first, second []byte) {
		dir := t.TempDir()
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = root.Close() }()
		limits := DefaultLimits()
		limits.MaxEntries = 64
		u := newUnpacker(root, []string{"configs"}, limits, 1<<20)
		for _, layer := range [][]byte{first, second} {
			stream := &countingReader{r: bytes.NewReader(layer), n: &u.read, limit: u.limit, what: "unpacked bytes"}
			if err := u.layer(stream); err != nil {
				break
			}
		}
		if u.read > u.limit+int64(len(first)+len(second)) || u.entries > limits.MaxEntries+1 {
			t.Fatalf("read %d bytes and %d entries past the limits", u.read, u.entries)
		}
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			rel = filepath.ToSlash(rel)
			if rel != "." && rel != "configs" && !strings.HasPrefix(rel, "configs/") {
				t.Errorf("%s written outside the kept tree", rel)
			}
			if !d.IsDir() && !d.Type().IsRegular() {
				t.Errorf("%s is neither a file nor a directory (%v)", rel, d.Type())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
