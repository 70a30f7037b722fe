package catalog

import (
	"unsafe"

	"github.com/ferrydev/ferry/internal/lru"
)

// DefaultManifestCacheBytes bounds the decoded manifests a catalog keeps in
// memory for bundles whose documents stay on disk.
const DefaultManifestCacheBytes = 8 << 20

// ManifestsSize is what manifests weigh in a cache: the memory their JSON
// holds (its capacity, not only its length: a buffer grown by appending
// keeps its spare room), their names and the Manifest values themselves.
func ManifestsSize(ms []Manifest) int64 {
	n := int64(cap(ms)) * int64(unsafe.Sizeof(Manifest{}))
	for _, m := range ms {
		n += int64(cap(m.JSON) + len(m.Name) + len(m.Kind) + len(m.APIVersion))
	}
	return n
}

// manifestCache is a catalog's cache of decoded manifests, keyed by the
// source they were read from.
type manifestCache = lru.Cache[diskManifests, []Manifest]

// diskManifests is a manifest source read again from disk on use, which
// the catalog's manifest cache serves once read.
type diskManifests interface {
	manifestSource
	setCache(*manifestCache)
}
