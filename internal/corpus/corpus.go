package corpus

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Community is the file-based catalog rendered from the community operators
// (325 packages, 6,266 bundles, every bundle's manifests inlined).
const Community = "community-prod-full-fbc.tar.xz"

// stampFile marks a complete unpack.
const stampFile = ".extracted"

// extractTimeout bounds tar: the community catalog (14 MB of xz, 150 MB
// unpacked) takes about a second on 2 cores.
const extractTimeout = 5 * time.Minute

// ErrAbsent is returned, wrapped, when the corpus or a file of it is not
// there; tests skip then.
var ErrAbsent = errors.New("the shared corpus of real catalogs is not next to this clone")

// File returns the path of a file of the corpus next to the module whose
// root is moduleRoot: moduleRoot/../shared/corpus/name. The error wraps
// ErrAbsent when the file does not exist.
func File(moduleRoot, name string) (string, error) {
	p := filepath.Join(filepath.Dir(filepath.Clean(moduleRoot)), "shared", "corpus", name)
	st, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s is absent: %w", p, ErrAbsent)
	case err != nil:
		return "", fmt.Errorf("corpus file: %w", err)
	case st.IsDir():
		return "", fmt.Errorf("corpus file %s is a directory, not a tarball", p)
	}
	return p, nil
}

// Extract unpacks tarball (.tar.xz, .txz or .tar) once into
// cache/corpus/<name>/ and returns the catalog root inside it: the lone
// top-level folder when there is exactly one and no file beside it, else
// the folder itself. A later call, from this process or another, finds the
// stamp and unpacks nothing.
func Extract(ctx context.Context, tarball, cache string) (string, error) {
	dest := filepath.Join(cache, "corpus", stem(filepath.Base(tarball)))
	if _, err := os.Stat(filepath.Join(dest, stampFile)); err != nil {
		if err := extract(ctx, tarball, dest); err != nil {
			return "", err
		}
	}
	return root(dest)
}

// stem is a tarball's name without its archive extension.
func stem(name string) string {
	for _, ext := range []string{".tar.xz", ".txz", ".tar"} {
		if s, ok := strings.CutSuffix(name, ext); ok {
			return s
		}
	}
	return name
}

// extract unpacks into a folder of its own next to dest and renames it
// into place, holding an exclusive lock on dest.lock meanwhile, so that
// concurrent callers unpack once and dest is complete whenever it exists
// with its stamp.
func extract(ctx context.Context, tarball, dest string) error {
	if _, err := os.Stat(tarball); err != nil {
		return fmt.Errorf("corpus: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	unlock, err := lock(ctx, dest+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dest, stampFile)); err == nil {
		return nil // another process unpacked it while this one waited
	}
	part, err := os.MkdirTemp(filepath.Dir(dest), filepath.Base(dest)+".part-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(part) // gone after a successful rename
	xctx, cancel := context.WithTimeout(ctx, extractTimeout)
	defer cancel()
	flags := "-xf"
	if strings.HasSuffix(tarball, ".xz") || strings.HasSuffix(tarball, ".txz") {
		flags = "-xJf"
	}
	out, err := exec.CommandContext(xctx, "tar", flags, tarball, "-C", part).CombinedOutput()
	if err != nil {
		return fmt.Errorf("extracting %s into %s: %w: %s", tarball, part, err, bytesTail(out, 2048))
	}
	if err := os.WriteFile(filepath.Join(part, stampFile), []byte(tarball+"\n"), 0o644); err != nil {
		return err
	}
	// What is there without a stamp is an interrupted unpack: replace it.
	if err := os.RemoveAll(dest); err != nil {
		return err
	}
	if err := os.Rename(part, dest); err != nil {
		return fmt.Errorf("moving the unpacked %s into place: %w", tarball, err)
	}
	return nil
}

// lock takes an exclusive lock on the file path (created if needed),
// waiting until ctx is done.
func lock(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("waiting for the lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// root is the catalog root of an unpacked tarball.
func root(dest string) (string, error) {
	ents, err := os.ReadDir(dest)
	if err != nil {
		return "", err
	}
	var dirs []string
	files := 0
	for _, e := range ents {
		switch {
		case strings.HasPrefix(e.Name(), "."):
		case e.IsDir():
			dirs = append(dirs, e.Name())
		default:
			files++
		}
	}
	if len(dirs) == 1 && files == 0 {
		return filepath.Join(dest, dirs[0]), nil
	}
	return dest, nil
}

// bytesTail is the last n bytes of b, as text.
func bytesTail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
