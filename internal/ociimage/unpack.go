package ociimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Whiteout markers of the OCI layer format.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// unpacker applies an image's layers, in order, into a directory, keeping
// only the trees under keep (slash paths relative to the image root). Every
// write goes through an os.Root, so nothing lands outside the directory even
// if a check below were wrong; and no symlink is created, so nothing read
// from the directory later leads outside it.
type unpacker struct {
	root *os.Root
	keep []string
	// limit and read count the uncompressed bytes of every layer.
	limit, read int64
	// maxEntries and entries count tar entries of every layer.
	maxEntries, entries int
	// written holds what the current layer wrote, which its own whiteouts
	// leave alone.
	written map[string]bool
}

func newUnpacker(root *os.Root, keep []string, limits Limits, maxBytes int64) *unpacker {
	return &unpacker{root: root, keep: keep, limit: maxBytes, maxEntries: limits.MaxEntries}
}

// decompress returns the tar stream of a layer blob: gzip, zstd or plain.
func decompress(r *bufio.Reader) (io.ReadCloser, error) {
	magic, err := r.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(r)
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	default:
		return io.NopCloser(r), nil
	}
}

// countingReader fails once more than limit bytes were read through it.
type countingReader struct {
	r     io.Reader
	n     *int64
	limit int64
	what  string
}

func (c *countingReader) Read(p []byte) (int, error) {
	if *c.n > c.limit {
		return 0, c.err()
	}
	n, err := c.r.Read(p)
	*c.n += int64(n)
	if *c.n > c.limit {
		// Nothing of this read is handed on: io.ReadFull would drop an
		// error that comes with a full buffer.
		return 0, c.err()
	}
	return n, err
}

func (c *countingReader) err() error {
	return fmt.Errorf("%w: more than %d %s", ErrLimit, c.limit, c.what)
}

// layer applies one uncompressed tar stream.
func (u *unpacker) layer(tarStream io.Reader) error {
	u.written = map[string]bool{}
	tr := tar.NewReader(tarStream)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the layer's tar stream: %w", err)
		}
		u.entries++
		if u.entries > u.maxEntries {
			return fmt.Errorf("%w: more than %d tar entries", ErrLimit, u.maxEntries)
		}
		if err := u.entry(hdr, tr); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
}

// cleanEntryPath turns a tar name into a slash path relative to the image
// root, refusing any ".." element.
func cleanEntryPath(name string) (string, error) {
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", fmt.Errorf("%w: the path has a \"..\" element", ErrUnsafe)
		}
	}
	p := strings.TrimPrefix(path.Clean("/"+name), "/")
	return p, nil
}

// selected reports whether p lies in one of the kept trees.
func (u *unpacker) selected(p string) bool {
	for _, k := range u.keep {
		if p == k || strings.HasPrefix(p, k+"/") {
			return true
		}
	}
	return false
}

// coveringKeep returns the kept trees at or below p ("" is the image root).
func (u *unpacker) coveringKeep(p string) []string {
	var out []string
	for _, k := range u.keep {
		if p == "" || k == p || strings.HasPrefix(k, p+"/") {
			out = append(out, k)
		}
	}
	return out
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	p, err := cleanEntryPath(hdr.Name)
	if err != nil {
		return err
	}
	dir, base := path.Dir(p), path.Base(p)
	if dir == "." {
		dir = ""
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		if base == whiteoutOpaque {
			return u.opaque(dir)
		}
		return u.whiteout(path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)))
	}
	if p == "" || !u.selected(p) {
		return nil // outside the content: read past it (counted, not written)
	}
	u.written[p] = true
	switch hdr.Typeflag {
	case tar.TypeDir:
		if st, err := u.root.Lstat(p); err == nil && !st.IsDir() {
			if err := u.root.RemoveAll(p); err != nil {
				return err
			}
		}
		return u.root.MkdirAll(p, 0o755)
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // TypeRegA is still written by old tools
		if err := u.prepare(p); err != nil {
			return err
		}
		f, err := u.root.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, io.LimitReader(r, hdr.Size)); err != nil {
			_ = f.Close()
			return err
		}
		return f.Close()
	case tar.TypeSymlink:
		// No symlink is ever created: the tree is read later without
		// confinement, and a symlink reached through another one resolves
		// elsewhere than its lexical target. A symlink to a regular file
		// already unpacked becomes a hard link to it.
		target, err := u.linkTarget(dir, hdr.Linkname, true)
		if err != nil {
			return err
		}
		st, err := u.root.Lstat(target)
		if err != nil {
			return fmt.Errorf("%w: symlink target %q is not in the image before the link", ErrUnsafe, hdr.Linkname)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%w: symlink target %q is not a regular file (symlinks to directories are not unpacked)", ErrUnsafe, hdr.Linkname)
		}
		if err := u.prepare(p); err != nil {
			return err
		}
		return u.root.Link(target, p)
	case tar.TypeLink:
		target, err := u.linkTarget(dir, hdr.Linkname, false)
		if err != nil {
			return err
		}
		if err := u.prepare(p); err != nil {
			return err
		}
		if err := u.root.Link(target, p); err != nil {
			return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
		}
		return nil
	default:
		return fmt.Errorf("%w: entry type %q (device, FIFO or other special file) has no place in a catalog or bundle", ErrUnsafe, string(hdr.Typeflag))
	}
}

// prepare makes p's parent directory and removes what lies at p.
func (u *unpacker) prepare(p string) error {
	if d := path.Dir(p); d != "." {
		if err := u.root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := u.root.RemoveAll(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// linkTarget checks a link's target and returns it as a path from the
// image root: it must resolve, lexically, inside a kept tree. A symlink's
// target is relative to the link's directory, or absolute in the image (not
// on this machine); a hard link's is a path from the image root. Since no
// symlink is ever created, lexical resolution is the real one.
func (u *unpacker) linkTarget(dir, target string, symlink bool) (string, error) {
	var resolved string
	switch {
	case !symlink:
		var err error
		if resolved, err = cleanEntryPath(target); err != nil {
			return "", fmt.Errorf("hard link target %q: %w", target, err)
		}
	case path.IsAbs(target):
		resolved = strings.TrimPrefix(path.Clean(target), "/")
	default:
		resolved = path.Join(dir, target)
		if resolved == ".." || strings.HasPrefix(resolved, "../") {
			return "", fmt.Errorf("%w: link target %q leaves the image root", ErrUnsafe, target)
		}
	}
	if resolved == "" || !u.selected(resolved) {
		return "", fmt.Errorf("%w: link target %q lies outside %s", ErrUnsafe, target, strings.Join(u.keep, ", "))
	}
	return resolved, nil
}

// whiteout removes p as lower layers left it, when it is in (or holds) a
// kept tree.
func (u *unpacker) whiteout(p string) error {
	if u.selected(p) {
		if u.written[p] {
			return nil
		}
		return u.root.RemoveAll(p)
	}
	for _, k := range u.coveringKeep(p) {
		if err := u.root.RemoveAll(k); err != nil {
			return err
		}
	}
	return nil
}

// opaque empties directory d of what lower layers put there.
func (u *unpacker) opaque(d string) error {
	if d != "" && u.selected(d) {
		ents, err := fs.ReadDir(u.root.FS(), d)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, e := range ents {
			p := path.Join(d, e.Name())
			if !u.written[p] {
				if err := u.root.RemoveAll(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, k := range u.coveringKeep(d) {
		if u.wroteUnder(k) {
			if err := u.opaque(k); err != nil {
				return err
			}
			continue
		}
		if err := u.root.RemoveAll(k); err != nil {
			return err
		}
	}
	return nil
}

// wroteUnder reports whether the current layer wrote p or anything below it.
func (u *unpacker) wroteUnder(p string) bool {
	for w := range u.written {
		if w == p || strings.HasPrefix(w, p+"/") {
			return true
		}
	}
	return false
}
