package catalog

// DefaultManifestCacheBytes bounds the decoded manifests a catalog keeps in
// memory for bundles whose documents stay on disk.
const DefaultManifestCacheBytes = 32 << 20

// ManifestsSize is what manifests weigh in a cache: the bytes of their JSON
// and names.
func ManifestsSize(ms []Manifest) int64 {
	var n int64
	for _, m := range ms {
		n += int64(len(m.JSON) + len(m.Name) + len(m.Kind) + len(m.APIVersion))
	}
	return n
}
