package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// goBuild builds catalogd into bin.
func goBuild(ctx context.Context, repo, bin string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/catalogd")
	cmd.Dir = repo
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building catalogd: %w", err)
	}
	return nil
}

func gitDescribe(repo string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		return "an unknown commit"
	}
	s := "commit " + strings.TrimSpace(string(out))
	cmd = exec.CommandContext(ctx, "git", "status", "--porcelain", "--", "internal/catalog", "internal/catalogd", "cmd/catalogd")
	cmd.Dir = repo
	if out, err := cmd.Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		s += " with local changes to the catalog packages"
	}
	return s
}

// extractCorpus unpacks the tarball once into cache/<name>/ and returns the
// catalog root inside it (the single top-level directory, if there is one).
func extractCorpus(ctx context.Context, tarball, cache string) (string, error) {
	name := filepath.Base(tarball)
	for _, ext := range []string{".tar.xz", ".txz", ".tar"} {
		name = strings.TrimSuffix(name, ext)
	}
	dest := filepath.Join(cache, name)
	stamp := filepath.Join(dest, ".extracted")
	if _, err := os.Stat(stamp); err != nil {
		st, err := os.Stat(tarball)
		if err != nil {
			return "", fmt.Errorf("corpus: %w", err)
		}
		logf("extracting %s (%d MB) into %s (once)", tarball, st.Size()>>20, dest)
		if err := os.RemoveAll(dest); err != nil {
			return "", err
		}
		part := dest + ".part"
		_ = os.RemoveAll(part)
		if err := os.MkdirAll(part, 0o755); err != nil {
			return "", err
		}
		xctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(xctx, "tar", "-xJf", tarball, "-C", part)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("extracting %s: %w", tarball, err)
		}
		if err := os.WriteFile(filepath.Join(part, ".extracted"), []byte(tarball+"\n"), 0o644); err != nil {
			return "", err
		}
		if err := os.Rename(part, dest); err != nil {
			return "", err
		}
	}
	return catalogRoot(dest)
}

// catalogRoot descends into a lone top-level directory.
func catalogRoot(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var dirs []string
	files := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		} else {
			files++
		}
	}
	if len(dirs) == 1 && files == 0 {
		return filepath.Join(dir, dirs[0]), nil
	}
	return dir, nil
}

// evictPageCache asks the kernel to drop the cached pages of every file
// under dir (fsync first, so that the pages are clean and can be dropped).
// This touches only these files, not the rest of the machine's page cache.
func evictPageCache(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_ = f.Sync()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		total += st.Size()
		// posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
		const fadvDontNeed = 4
		if _, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0); e != 0 {
			return fmt.Errorf("fadvise %s: %w", p, e)
		}
		return nil
	})
	return total, err
}

// treeSize is the total size of the regular files under dir.
func treeSize(dir string) (files int, size int64) {
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil //nolint:nilerr // unreadable entries are not counted
		}
		if info, err := d.Info(); err == nil && !strings.HasPrefix(d.Name(), ".") {
			files++
			size += info.Size()
		}
		return nil
	})
	return files, size
}

// residentBytes reports how many bytes of the files under dir are in the
// page cache (mincore over an mmap of each file), to say how cold a start was.
func residentBytes(dir string) int64 {
	var total int64
	page := int64(os.Getpagesize())
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.Size() == 0 {
			return nil
		}
		data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
		if err != nil {
			return nil
		}
		defer syscall.Munmap(data)
		vec := make([]byte, (st.Size()+page-1)/page)
		if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
			return nil
		}
		for _, v := range vec {
			if v&1 != 0 {
				total += page
			}
		}
		return nil
	})
	return total
}
