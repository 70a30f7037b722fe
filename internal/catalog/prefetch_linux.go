//go:build linux

package catalog

import (
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// prefetch asks the kernel to read the files at paths ahead, in the order
// given, so that reading them from disk overlaps with parsing the ones
// read before instead of stalling the workers one file at a time. Files it
// cannot open are left to the read that reports them.
func prefetch(paths ...string) {
	for _, p := range paths {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		_ = unix.Fadvise(fd, 0, 0, unix.FADV_WILLNEED)
		_ = unix.Close(fd)
	}
}

// prefetchTree asks the kernel to read ahead every file under root (a
// bundle directory), as prefetch does.
func prefetchTree(root string) {
	var paths []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return nil
	})
	prefetch(paths...)
}
