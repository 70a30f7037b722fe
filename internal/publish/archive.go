package publish

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Limits of a bundle archive.
const (
	// MaxArchiveBytes is the largest archive catalogd accepts, and the
	// largest total of unpacked file contents.
	MaxArchiveBytes = 64 << 20
	// MaxFiles is the most files a bundle archive may hold.
	MaxFiles = 10000
	// ChunkSize is the largest chunk of an archive in one message.
	ChunkSize = 1 << 20
)

// BundleDirs are the directories of a bundle that are packed.
var BundleDirs = []string{"manifests", "metadata"}

// ErrTooLarge is returned when an archive or its contents exceed MaxArchiveBytes.
var ErrTooLarge = errors.New("bundle is too large")

// ReadDir reads the files of a bundle directory that make the bundle: every
// regular file under manifests/ and metadata/, except hidden ones. A
// missing directory is left out (validation reports it).
func ReadDir(dir string) (Files, error) {
	files := Files{}
	var total int64
	for _, sub := range BundleDirs {
		root := filepath.Join(dir, sub)
		if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if isHidden(rel) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			st, err := os.Stat(p) // follows a symlink to a regular file
			if err != nil {
				return err
			}
			if !st.Mode().IsRegular() {
				return fmt.Errorf("%s: not a regular file", p)
			}
			total += st.Size()
			if total > MaxArchiveBytes {
				return fmt.Errorf("%w: more than %d MiB under %s", ErrTooLarge, MaxArchiveBytes>>20, dir)
			}
			if len(files) >= MaxFiles {
				return fmt.Errorf("%w: more than %d files under %s", ErrTooLarge, MaxFiles, dir)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files[rel] = data
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// Pack writes the files as a gzipped tar in a canonical form: sorted paths,
// fixed modes and no times or owners.
func Pack(files Files) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, p := range files.Paths() {
		data := files[p]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, Size: int64(len(data)), Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// TarOverheadPerEntry is how many bytes of tar headers, extended (PAX)
// records and padding each allowed entry may add to the uncompressed stream
// on top of the contents limit.
const TarOverheadPerEntry = 2048

// unpackConfig holds Unpack's limits.
type unpackConfig struct {
	maxBytes   int64
	maxEntries int
}

// UnpackOption sets a limit of Unpack.
type UnpackOption func(*unpackConfig)

// WithMaxBytes limits the total size of all entries (default MaxArchiveBytes).
func WithMaxBytes(n int64) UnpackOption { return func(c *unpackConfig) { c.maxBytes = n } }

// WithMaxEntries limits the number of entries (default MaxFiles).
func WithMaxEntries(n int) UnpackOption { return func(c *unpackConfig) { c.maxEntries = n } }

// Unpack reads a tar or gzipped tar of a bundle directory. Only regular
// files and directories are allowed; paths must stay inside the bundle.
// Hidden files are dropped, but like every other entry (directories,
// extended headers) they count against the limits: at most maxEntries
// entries whose declared sizes total at most maxBytes, and an uncompressed
// stream of at most maxBytes plus TarOverheadPerEntry a entry. Decompression
// stops as soon as a limit is passed or ctx is done. When every path lies
// under one top directory that is not itself part of a bundle
// (bundle/manifests/...), that directory is stripped.
func Unpack(ctx context.Context, data []byte, opts ...UnpackOption) (Files, error) {
	cfg := unpackConfig{maxBytes: MaxArchiveBytes, maxEntries: MaxFiles}
	for _, o := range opts {
		o(&cfg)
	}
	streamLimit := cfg.maxBytes + int64(cfg.maxEntries+1)*TarOverheadPerEntry
	var r io.Reader = bytes.NewReader(data)
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("not a gzip stream: %w", err)
		}
		defer func() { _ = zr.Close() }()
		r = zr
	}
	br := &boundedReader{ctx: ctx, r: r, limit: streamLimit}
	tr := tar.NewReader(br)
	files := Files{}
	var total int64
	entries := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if berr := br.err; berr != nil {
				return nil, berr
			}
			return nil, fmt.Errorf("not a tar archive: %w", err)
		}
		entries++
		if entries > cfg.maxEntries {
			return nil, fmt.Errorf("%w: archive entry %q: more than %d entries (directories and hidden files count)", ErrTooLarge, h.Name, cfg.maxEntries)
		}
		if h.Size < 0 || h.Size > cfg.maxBytes-total {
			return nil, fmt.Errorf("%w: archive entry %q declares %d bytes: the entries would total more than %d bytes (hidden files count)", ErrTooLarge, h.Name, h.Size, cfg.maxBytes)
		}
		total += h.Size
		name := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(h.Name, "./")), "/")
		if path.IsAbs(h.Name) || strings.Contains("/"+h.Name+"/", "/../") || !fs.ValidPath(name) {
			return nil, fmt.Errorf("archive entry %q: path leaves the bundle directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("archive entry %q: only regular files and directories are allowed (type %q)", h.Name, h.Typeflag)
		}
		if name == "." {
			return nil, fmt.Errorf("archive entry %q: not a file path", h.Name)
		}
		if isHidden(name) {
			continue
		}
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("archive entry %q: appears twice", h.Name)
		}
		body := make([]byte, h.Size)
		if _, err := io.ReadFull(tr, body); err != nil {
			if berr := br.err; berr != nil {
				return nil, berr
			}
			return nil, fmt.Errorf("archive entry %q: truncated: %w", h.Name, err)
		}
		files[name] = body
	}
	return stripTop(files), nil
}

// boundedReader stops reading when more than limit bytes were read or ctx
// is done, and remembers why.
type boundedReader struct {
	ctx   context.Context
	r     io.Reader
	limit int64
	n     int64
	err   error
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if err := b.ctx.Err(); err != nil {
		b.err = fmt.Errorf("unpacking stopped: %w", err)
		return 0, b.err
	}
	if int64(len(p)) > b.limit-b.n+1 {
		p = p[:b.limit-b.n+1]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		b.err = fmt.Errorf("%w: the uncompressed archive exceeds %d bytes", ErrTooLarge, b.limit)
		return n, b.err
	}
	return n, err
}

// stripTop removes a single top directory that wraps the bundle.
func stripTop(files Files) Files {
	top := ""
	for p := range files {
		first, _, ok := strings.Cut(p, "/")
		if !ok {
			return files
		}
		for _, d := range BundleDirs {
			if first == d {
				return files
			}
		}
		if top != "" && first != top {
			return files
		}
		top = first
	}
	if top == "" {
		return files
	}
	out := make(Files, len(files))
	for p, d := range files {
		out[strings.TrimPrefix(p, top+"/")] = d
	}
	return out
}

// Digest is the content digest of a file set: "sha256:<hex>" over every
// path and content in path order. It does not depend on how an archive of
// the files was made.
func (f Files) Digest() string {
	h := sha256.New()
	var n [8]byte
	for _, p := range f.Paths() {
		data := f[p]
		h.Write([]byte(p))
		h.Write([]byte{0})
		binary.BigEndian.PutUint64(n[:], uint64(len(data)))
		h.Write(n[:])
		h.Write(data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// SHA256 is the lower-case hex SHA-256 of data, as PublishHeader.sha256 carries it.
func SHA256(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}
