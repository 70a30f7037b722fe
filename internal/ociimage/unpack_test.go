package ociimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// entry is one tar entry of a test layer.
type entry struct {
	name, body, link string
	typ              byte
}

func file(name, body string) entry { return entry{name: name, body: body, typ: tar.TypeReg} }
func dir(name string) entry        { return entry{name: name, typ: tar.TypeDir} }
func symlink(name, target string) entry {
	return entry{name: name, link: target, typ: tar.TypeSymlink}
}
func hardlink(name, target string) entry { return entry{name: name, link: target, typ: tar.TypeLink} }

func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tree lists every path under dir with its content or link target.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, rel+" -> "+target)
		case d.IsDir():
			out = append(out, rel+"/")
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, rel+"="+string(data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestUnpackLayers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		keep   []string
		layers [][]entry
		limits func(*Limits)
		max    int64
		want   []string
		err    error
		msg    string
	}{
		{
			name:   "only the kept tree is written",
			keep:   []string{"configs"},
			layers: [][]entry{{dir("bin/"), file("bin/opm", "binary"), dir("configs/"), file("configs/a/catalog.json", "{}"), file("./configs/b.yaml", "b")}},
			want:   []string{"configs/", "configs/a/", "configs/a/catalog.json={}", "configs/b.yaml=b"},
		},
		{
			name: "a later layer replaces and whites out files",
			keep: []string{"configs"},
			layers: [][]entry{
				{file("configs/a.json", "1"), file("configs/b.json", "2"), file("configs/c/d.json", "3")},
				{file("configs/a.json", "new"), file("configs/.wh.b.json", ""), file("configs/c/.wh..wh..opq", ""), file("configs/c/e.json", "4")},
			},
			want: []string{"configs/", "configs/a.json=new", "configs/c/", "configs/c/e.json=4"},
		},
		{
			name: "an opaque root removes the lower layers' catalog",
			keep: []string{"configs"},
			layers: [][]entry{
				{file("configs/old.json", "1")},
				{file(".wh..wh..opq", ""), file("configs/new.json", "2")},
			},
			want: []string{"configs/", "configs/new.json=2"},
		},
		{
			name: "a whiteout of the catalog directory removes it",
			keep: []string{"configs"},
			layers: [][]entry{
				{file("configs/old.json", "1")},
				{file(".wh.configs", "")},
			},
			want: nil,
		},
		{
			name:   "symlinks to files inside become hard links",
			keep:   []string{"configs"},
			layers: [][]entry{{file("configs/a/x.json", "x"), symlink("configs/b/y.json", "/configs/a/x.json"), symlink("configs/z.json", "a/x.json")}},
			want:   []string{"configs/", "configs/a/", "configs/a/x.json=x", "configs/b/", "configs/b/y.json=x", "configs/z.json=x"},
		},
		{
			name:   "a symlink to a directory",
			keep:   []string{"configs"},
			layers: [][]entry{{file("configs/a/x.json", "x"), symlink("configs/b", "a")}},
			err:    ErrUnsafe, msg: "symlinks to directories are not unpacked",
		},
		{
			name:   "a symlink before its target",
			keep:   []string{"configs"},
			layers: [][]entry{{symlink("configs/b.json", "a.json"), file("configs/a.json", "x")}},
			err:    ErrUnsafe, msg: `symlink target "a.json" is not in the image before the link`,
		},
		{
			name: "a symlink through a symlink to a directory, out of the root",
			keep: []string{"configs"},
			layers: [][]entry{{
				dir("configs/a/b/"), symlink("configs/a/b/s", "/configs"),
				symlink("configs/a/b/l", "s/../../../etc/passwd"),
			}},
			err: ErrUnsafe, msg: `symlink target "/configs" is not a regular file`,
		},
		{
			name:   "hard links inside are kept",
			keep:   []string{"configs"},
			layers: [][]entry{{file("configs/x.json", "x"), hardlink("configs/y.json", "configs/x.json")}},
			want:   []string{"configs/", "configs/x.json=x", "configs/y.json=x"},
		},
		{
			name:   "a parent path element",
			keep:   []string{"configs"},
			layers: [][]entry{{file("configs/../../etc/passwd", "x")}},
			err:    ErrUnsafe, msg: `entry "configs/../../etc/passwd"`,
		},
		{
			name:   "an absolute symlink out of the catalog",
			keep:   []string{"configs"},
			layers: [][]entry{{symlink("configs/passwd", "/etc/passwd")}},
			err:    ErrUnsafe, msg: `link target "/etc/passwd" lies outside configs`,
		},
		{
			name:   "a relative symlink out of the image",
			keep:   []string{"configs"},
			layers: [][]entry{{symlink("configs/up", "../../../root")}},
			err:    ErrUnsafe, msg: "leaves the image root",
		},
		{
			name:   "a symlink to a directory outside, then a file through it",
			keep:   []string{"configs"},
			layers: [][]entry{{symlink("configs/d", "../bin"), file("configs/d/x", "x")}},
			err:    ErrUnsafe, msg: `link target "../bin" lies outside configs`,
		},
		{
			name:   "a hard link to a file outside",
			keep:   []string{"configs"},
			layers: [][]entry{{file("etc/shadow", "s"), hardlink("configs/shadow", "etc/shadow")}},
			err:    ErrUnsafe, msg: `link target "etc/shadow" lies outside`,
		},
		{
			name:   "a device",
			keep:   []string{"configs"},
			layers: [][]entry{{{name: "configs/null", typ: tar.TypeChar}}},
			err:    ErrUnsafe, msg: "device, FIFO or other special file",
		},
		{
			name:   "too many entries",
			keep:   []string{"configs"},
			limits: func(l *Limits) { l.MaxEntries = 2 },
			layers: [][]entry{{file("a", ""), file("b", ""), file("c", "")}},
			err:    ErrLimit, msg: "more than 2 tar entries",
		},
		{
			name:   "too many bytes, even outside the catalog",
			keep:   []string{"configs"},
			max:    4096,
			layers: [][]entry{{file("bin/big", strings.Repeat("x", 8192))}},
			err:    ErrLimit, msg: "more than 4096 unpacked bytes",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			limits := DefaultLimits()
			if tc.limits != nil {
				tc.limits(&limits)
			}
			max := tc.max
			if max == 0 {
				max = 1 << 20
			}
			u := newUnpacker(root, tc.keep, limits, max)
			var gotErr error
			for _, l := range tc.layers {
				stream := &countingReader{r: bytes.NewReader(tarOf(t, l...)), n: &u.read, limit: u.limit, what: "unpacked bytes"}
				if gotErr = u.layer(stream); gotErr != nil {
					break
				}
			}
			if tc.err != nil {
				if !errors.Is(gotErr, tc.err) || !strings.Contains(gotErr.Error(), tc.msg) {
					t.Fatalf("error %v, want %v containing %q", gotErr, tc.err, tc.msg)
				}
				if _, err := os.Lstat("/etc/passwd-ferry-test"); err == nil {
					t.Fatal("wrote outside")
				}
				return
			}
			if gotErr != nil {
				t.Fatal(gotErr)
			}
			got := tree(t, dir)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("unpacked:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{name: "tag", in: "oci://127.0.0.1:5000/catalogs/community:v1", want: "127.0.0.1:5000/catalogs/community:v1"},
		{name: "digest", in: "oci://quay.io/org/cat@sha256:" + strings.Repeat("a", 64), want: "quay.io/org/cat@sha256:" + strings.Repeat("a", 64)},
		{name: "without scheme", in: "localhost:5000/c:latest", want: "localhost:5000/c:latest"},
		{name: "no registry", in: "oci://org/cat:v1", err: "name the registry host"},
		{name: "no tag", in: "oci://quay.io/org/cat", err: "give a tag or a digest"},
		{name: "registry port but no tag", in: "oci://127.0.0.1:5000/cat", err: "give a tag or a digest"},
		{name: "empty", in: "oci://", err: "empty"},
		{name: "bad digest", in: "oci://quay.io/org/cat@sha256:abc", err: "image reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := ParseReference(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ref.String() != tc.want {
				t.Fatalf("%s, want %s", ref, tc.want)
			}
		})
	}
}

func TestPlainHTTPOnlyForLoopbackOrNamed(t *testing.T) {
	g := &plainHTTPGuard{insecure: []string{"registry.lan:5000", "mirror.lan"}}
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost:5000": true, "[::1]:5000": true,
		"registry.lan:5000": true, "mirror.lan:443": true, "registry.lan:5001": false,
		"10.0.0.1:5000": false, "quay.io": false,
	} {
		if got := g.allowsHTTP(host); got != want {
			t.Errorf("%s: plain HTTP allowed %v, want %v", host, got, want)
		}
	}
}
