package publish

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func tarOf(t *testing.T, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		body := strings.Repeat("x", int(h.Size))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write([]byte(body))
		}
	}
	_ = tw.Close()
	return buf.Bytes()
}

func TestPackUnpackDigest(t *testing.T) {
	files := Files{"metadata/annotations.yaml": []byte("a: b\n"), "manifests/csv.yaml": []byte("kind: X\n")}
	archive, err := Pack(files)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unpack(context.Background(), archive)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest() != files.Digest() || len(got) != 2 {
		t.Fatalf("round trip: %v", got)
	}
	// The digest does not depend on order, times, compression or a wrapping directory.
	plain := tarOf(t,
		&tar.Header{Name: "bundle/", Typeflag: tar.TypeDir},
		&tar.Header{Name: "bundle/manifests/csv.yaml", Size: 0},
		&tar.Header{Name: "bundle/metadata/annotations.yaml", Size: 0},
	)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range []string{"./manifests/csv.yaml", "./metadata/annotations.yaml", "./.hidden"} {
		data := files[strings.TrimPrefix(p, "./")]
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Size: int64(len(data)), Mode: 0o600})
		_, _ = tw.Write(data)
	}
	_ = tw.Close()
	other, err := Unpack(context.Background(), buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if other.Digest() != files.Digest() {
		t.Errorf("uncompressed, other order and modes: digest %s, want %s", other.Digest(), files.Digest())
	}
	wrapped, err := Unpack(context.Background(), plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := wrapped["manifests/csv.yaml"]; !ok {
		t.Errorf("wrapping directory not stripped: %v", wrapped.Paths())
	}
	changed := Files{"metadata/annotations.yaml": []byte("a: c\n"), "manifests/csv.yaml": []byte("kind: X\n")}
	if changed.Digest() == files.Digest() {
		t.Error("different content, same digest")
	}
}

func TestUnpackRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		archive []byte
		want    string
	}{
		"parent":   {tarOf(t, &tar.Header{Name: "../etc/passwd", Size: 1}), "leaves the bundle directory"},
		"absolute": {tarOf(t, &tar.Header{Name: "/etc/passwd", Size: 1}), "leaves the bundle directory"},
		"symlink":  {tarOf(t, &tar.Header{Name: "manifests/x.yaml", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}), "only regular files"},
		"twice":    {tarOf(t, &tar.Header{Name: "manifests/x.yaml", Size: 1}, &tar.Header{Name: "./manifests/x.yaml", Size: 1}), "appears twice"},
		"garbage":  {[]byte("hello"), "not a tar archive"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Unpack(context.Background(), tc.archive)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	_, err := Unpack(context.Background(), tarOf(t, &tar.Header{Name: "manifests/a.yaml", Size: 600}, &tar.Header{Name: "manifests/b.yaml", Size: 600}), WithMaxBytes(1000))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
}

func TestTokens(t *testing.T) {
	tok, err := ParseTokens("tokens", []byte("# comment\n\naaaaaaaaaaaaaaaa1 lighthouse-operator, harbor-operator\nbbbbbbbbbbbbbbbb2 *\ncccccccccccccccc3\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, ok := tok.Lookup("aaaaaaaaaaaaaaaa1")
	if !ok || g.ID != "tokens:3" || !g.Allows("harbor-operator") || !g.Allows("lighthouse-operator") || g.Allows("signal-store") {
		t.Fatalf("limited token: %+v %v", g, ok)
	}
	for _, all := range []string{"bbbbbbbbbbbbbbbb2", "cccccccccccccccc3"} {
		if g, ok := tok.Lookup(all); !ok || !g.Allows("anything") {
			t.Errorf("%s: %+v %v", all, g, ok)
		}
	}
	if _, ok := tok.Lookup("aaaaaaaaaaaaaaaa"); ok {
		t.Error("a prefix of a token matched")
	}
	if _, err := ParseTokens("t", []byte("short\n")); err == nil || !strings.Contains(err.Error(), "t:1: token is shorter") {
		t.Errorf("short token: %v", err)
	}
	if _, err := ParseTokens("t", []byte("dddddddddddddddd4\ndddddddddddddddd4 x\n")); err == nil || !strings.Contains(err.Error(), "same token as on line 1") {
		t.Errorf("duplicate: %v", err)
	}
}

func TestStore(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := Files{"manifests/x.yaml": []byte("x")}
	rec := &Record{Package: "p", Version: "1.0.0", Name: "p.v1.0.0", Digest: files.Digest(), Files: files}
	if prev, err := s.Put(rec); err != nil || prev != nil {
		t.Fatalf("put: %v %v", prev, err)
	}
	other := Files{"manifests/x.yaml": []byte("y")}
	prev, err := s.Put(&Record{Package: "p", Version: "1.0.0", Digest: other.Digest(), Files: other})
	if err != nil || prev == nil || prev.Digest != rec.Digest {
		t.Fatalf("second put must return the first: %v %v", prev, err)
	}
	if err := s.PutDeprecation(Deprecation{Package: "p", Schema: SchemaPackage, Message: "old"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDeprecation(Deprecation{Package: "p", Schema: SchemaPackage, Message: "new"}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all, err := s.All()
	if err != nil || len(all) != 1 || string(all[0].Files["manifests/x.yaml"]) != "x" {
		t.Fatalf("after reopen: %v %v", all, err)
	}
	deps, err := s.Deprecations()
	if err != nil || len(deps) != 1 || deps[0].Message != "new" {
		t.Fatalf("deprecations: %v %v", deps, err)
	}
}
