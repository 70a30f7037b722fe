//go:build linux

package catalog

import (
	"path/filepath"

	"golang.org/x/sys/unix"
)

// prefetch asks the kernel to read the files under dir ahead, in the order
// given, so that reading them from disk overlaps with parsing the ones
// read before instead of stalling the workers one file at a time. Files it
// cannot open are left to the read that reports them.
func prefetch(dir string, files []string) {
	for _, f := range files {
		fd, err := unix.Open(filepath.Join(dir, filepath.FromSlash(f)), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		_ = unix.Fadvise(fd, 0, 0, unix.FADV_WILLNEED)
		_ = unix.Close(fd)
	}
}
