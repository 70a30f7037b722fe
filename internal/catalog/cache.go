package catalog

import "github.com/ferrydev/ferry/internal/lru"

// DefaultManifestCacheBytes bounds the decoded manifests a catalog keeps in
// memory for bundles whose documents stay on disk.
const DefaultManifestCacheBytes = 8 << 20

// ManifestsSize is what manifests weigh in a cache: the bytes of their JSON
// and names.
func ManifestsSize(ms []Manifest) int64 {
	var n int64
	for _, m := range ms {
		n += int64(len(m.JSON) + len(m.Name) + len(m.Kind) + len(m.APIVersion))
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
