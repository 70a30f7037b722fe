// Package corpus locates the shared corpus of real catalogs that tests and
// measurements use, and unpacks a catalog of it once into the cache.
//
// The corpus is not part of the repository: it lies next to the clone, in
// ../shared/corpus (a clone made by hack/repeat-test.sh gets the same link).
// A catalog tarball is unpacked into
//
//	${FERRY_CACHE:-$HOME/.cache/ferry}/corpus/<name>/
//
// where <name> is the tarball's name without .tar.xz. A file .extracted
// marks a complete unpack, so an interrupted one is never taken for a
// catalog; a lock file next to the folder makes processes that unpack at
// the same time do it once.
package corpus
