//go:build !linux

package catalog

// prefetch does nothing where the kernel cannot be asked to read ahead.
func prefetch(...string) {}

// prefetchTree does nothing where the kernel cannot be asked to read ahead.
func prefetchTree(string) {}
