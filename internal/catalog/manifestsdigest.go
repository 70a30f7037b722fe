package catalog

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
)

// manifestsDigestDomain opens every manifests digest, so that it never
// equals a digest of anything else.
const manifestsDigestDomain = "ferry.manifests.v1\x00"

// ManifestsDigest returns "sha256:<hex>", the digest of a bundle's manifests
// exactly as catalogd serves them (GetBundle, GetSnapshot and ListBundles
// with manifests) and as a client receives them. It is the one definition
// of the encoding, used by catalogd and by the installer alike.
//
// The digest is SHA-256 over the concatenation of:
//
//   - the 19 bytes "ferry.manifests.v1" followed by one zero byte;
//   - for every manifest, in the order served, its four fields APIVersion,
//     Kind, Name and JSON, each as its length in bytes (an 8-byte big-endian
//     unsigned integer) followed by its bytes as they are, without any
//     normalisation.
//
// Every field carries its length and every manifest exactly four fields, so
// the byte stream decodes back into exactly one list: two different lists
// (different content, order or number of manifests) never share an encoding.
// An empty list hashes the opening bytes alone.
func ManifestsDigest(ms []Manifest) string {
	h := newManifestsHash()
	for _, m := range ms {
		h.add(m)
	}
	return h.digest()
}

// manifestsHash computes ManifestsDigest one manifest at a time.
type manifestsHash struct{ h hash.Hash }

func newManifestsHash() *manifestsHash {
	h := sha256.New()
	h.Write([]byte(manifestsDigestDomain))
	return &manifestsHash{h: h}
}

func (m *manifestsHash) add(man Manifest) {
	m.field([]byte(man.APIVersion))
	m.field([]byte(man.Kind))
	m.field([]byte(man.Name))
	m.field(man.JSON)
}

func (m *manifestsHash) field(b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	m.h.Write(n[:])
	m.h.Write(b)
}

func (m *manifestsHash) sum() (out [sha256.Size]byte) {
	copy(out[:], m.h.Sum(nil))
	return out
}

func (m *manifestsHash) digest() string { return sha256Digest(m.sum()) }

// sha256Digest renders a SHA-256 sum as "sha256:<hex>".
func sha256Digest(sum [sha256.Size]byte) string { return "sha256:" + hex.EncodeToString(sum[:]) }
