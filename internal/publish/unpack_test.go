package publish

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/publish/publishtest"
)

// rawHeader is a raw ustar header block of the given type and size.
func rawHeader(t *testing.T, name string, typeflag byte, size int64) []byte {
	t.Helper()
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typeflag
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// paxChain is a tar of n extended headers in a row, each with a body of
// about bodySize bytes, before one small file.
func paxChain(t *testing.T, n, bodySize int) []byte {
	t.Helper()
	val := strings.Repeat("x", bodySize-32)
	rec := fmt.Sprintf("comment=%s\n", val)
	l := len(rec) + 1
	for len(fmt.Sprintf("%d %s", l, rec)) != l {
		l++
	}
	rec = fmt.Sprintf("%d %s", l, rec)
	var buf bytes.Buffer
	for range n {
		buf.Write(rawHeader(t, "PaxHeaders/x", tar.TypeXHeader, int64(len(rec))))
		buf.WriteString(rec)
		buf.Write(make([]byte, (512-len(rec)%512)%512))
	}
	buf.Write(rawHeader(t, "manifests/a.yaml", tar.TypeReg, 0))
	buf.Write(make([]byte, 1024))
	return buf.Bytes()
}

func gzipOf(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestUnpackHiddenHugeEntry: a tar.gz whose hidden entry holds 16 GiB of
// zeros is refused at its header, quickly, before anything is decompressed.
func TestUnpackHiddenHugeEntry(t *testing.T) {
	const size = 16 << 30
	for _, name := range []string{".big", "bundle/manifests/.git/objects/pack"} {
		t.Run(name, func(t *testing.T) {
			archive := publishtest.ZeroEntryTarGz(t, name, size)
			if len(archive) > MaxArchiveBytes {
				t.Fatalf("the archive is %d bytes; it must fit an upload", len(archive))
			}
			// The archive is what it claims: a tar whose first entry is that file.
			zr, err := gzip.NewReader(bytes.NewReader(archive))
			if err != nil {
				t.Fatal(err)
			}
			h, err := tar.NewReader(zr).Next()
			if err != nil || h.Name != name || h.Size != size {
				t.Fatalf("crafted archive: %+v %v", h, err)
			}
			start := time.Now()
			_, err = Unpack(context.Background(), archive)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got %v, want ErrTooLarge", err)
			}
			want := fmt.Sprintf("archive entry %q declares %d bytes: the entries would total more than %d bytes", name, int64(size), MaxArchiveBytes)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("refusing took %s", d)
			}
		})
	}
}

// TestUnpackLimitsCountEverything: hidden files, directories and extended
// headers all count against the limits.
func TestUnpackLimitsCountEverything(t *testing.T) {
	many := func(n int, h func(i int) *tar.Header) []byte {
		hs := make([]*tar.Header, n)
		for i := range hs {
			hs[i] = h(i)
		}
		return tarOf(t, hs...)
	}
	tests := []struct {
		name    string
		archive []byte
		opts    []UnpackOption
		want    string
	}{
		{"hidden files count as entries",
			many(11, func(i int) *tar.Header { return &tar.Header{Name: fmt.Sprintf("manifests/.h%d", i)} }),
			[]UnpackOption{WithMaxEntries(10)}, `archive entry "manifests/.h10": more than 10 entries`},
		{"directories count as entries",
			many(11, func(i int) *tar.Header { return &tar.Header{Name: fmt.Sprintf("d%d/", i), Typeflag: tar.TypeDir} }),
			[]UnpackOption{WithMaxEntries(10)}, "more than 10 entries"},
		{"hidden files count against the size",
			tarOf(t, &tar.Header{Name: "manifests/a.yaml", Size: 600}, &tar.Header{Name: ".git/pack", Size: 600}),
			[]UnpackOption{WithMaxBytes(1000)}, `archive entry ".git/pack" declares 600 bytes: the entries would total more than 1000 bytes`},
		{"extended headers in a row",
			gzipOf(t, paxChain(t, 40, 1<<20-512)),
			[]UnpackOption{WithMaxBytes(1 << 20), WithMaxEntries(10)}, "the uncompressed archive exceeds"},
		{"symlink among hidden files",
			tarOf(t, &tar.Header{Name: ".link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}),
			nil, "only regular files and directories are allowed"},
		{"hard link",
			tarOf(t, &tar.Header{Name: "manifests/x.yaml", Typeflag: tar.TypeLink, Linkname: "manifests/y.yaml"}),
			nil, "only regular files and directories are allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unpack(context.Background(), tc.archive, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// Within the limits, the same kinds of entries are fine.
	ok := tarOf(t, &tar.Header{Name: "bundle/", Typeflag: tar.TypeDir}, &tar.Header{Name: "bundle/.hidden", Size: 10},
		&tar.Header{Name: "bundle/manifests/a.yaml", Size: 10})
	files, err := Unpack(context.Background(), ok, WithMaxEntries(3), WithMaxBytes(20))
	if err != nil || len(files) != 1 || len(files["manifests/a.yaml"]) != 10 {
		t.Fatalf("within the limits: %v %v", files, err)
	}
}

// TestUnpackStopsOnCancel: decompression stops when the context is done.
func TestUnpackStopsOnCancel(t *testing.T) {
	files := Files{}
	for i := range 50 {
		files[fmt.Sprintf("manifests/f%02d.yaml", i)] = bytes.Repeat([]byte("a: b\n"), 1<<14)
	}
	archive, err := Pack(files)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Unpack(ctx, archive)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "unpacking stopped") {
		t.Fatalf("got %v", err)
	}
	if _, err := Unpack(context.Background(), archive); err != nil {
		t.Fatal(err)
	}
}

func FuzzUnpack(f *testing.F) {
	good, err := Pack(Files{"metadata/annotations.yaml": []byte("a: b\n"), "manifests/csv.yaml": []byte("kind: X\n")})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	_ = tw.WriteHeader(&tar.Header{Name: "bundle/", Typeflag: tar.TypeDir})
	_ = tw.WriteHeader(&tar.Header{Name: "bundle/.hidden", Size: 3, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("abc"))
	_ = tw.WriteHeader(&tar.Header{Name: "bundle/manifests/x.yaml", Size: 1, Typeflag: tar.TypeReg, Format: tar.FormatPAX, PAXRecords: map[string]string{"comment": "c"}})
	_, _ = tw.Write([]byte("x"))
	_ = tw.Close()
	f.Add(plain.Bytes())
	f.Add([]byte{0x1f, 0x8b})
	const maxBytes, maxEntries = 1 << 16, 64
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := Unpack(context.Background(), data, WithMaxBytes(maxBytes), WithMaxEntries(maxEntries))
		if err != nil {
			return
		}
		var total int
		for p, d := range files {
			total += len(d)
			if p == "" || strings.HasPrefix(p, "/") || strings.Contains("/"+p+"/", "/../") || isHidden(p) {
				t.Fatalf("unpacked path %q", p)
			}
		}
		if total > maxBytes || len(files) > maxEntries {
			t.Fatalf("%d files, %d bytes: over the limits", len(files), total)
		}
		// What was unpacked packs and unpacks to the same content.
		again, err := Pack(files)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Unpack(context.Background(), again, WithMaxBytes(maxBytes), WithMaxEntries(maxEntries))
		if err != nil {
			t.Fatalf("repacked: %v", err)
		}
		if stripTop(files).Digest() != back.Digest() {
			t.Fatal("repacking changed the content")
		}
	})
}
