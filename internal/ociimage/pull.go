package ociimage

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/singleflight"
)

// Labels images carry.
const (
	// LabelConfigs names the directory of a catalog image's file-based catalog.
	LabelConfigs = "operators.operatorframework.io.index.configs.v1"
	// DefaultConfigsDir is where the catalog is when the label is absent.
	DefaultConfigsDir = "/configs"
	// LabelBundlePrefix prefixes every bundle label.
	LabelBundlePrefix = "operators.operatorframework.io.bundle."
	// LabelMediaType is the bundle format: registry+v1 is the one read.
	LabelMediaType = LabelBundlePrefix + "mediatype.v1"
	// LabelManifests and LabelMetadata name the bundle's directories.
	LabelManifests = LabelBundlePrefix + "manifests.v1"
	LabelMetadata  = LabelBundlePrefix + "metadata.v1"
	// LabelPackage, LabelChannels and LabelDefaultChannel repeat annotations.yaml.
	LabelPackage        = LabelBundlePrefix + "package.v1"
	LabelChannels       = LabelBundlePrefix + "channels.v1"
	LabelDefaultChannel = LabelBundlePrefix + "channel.default.v1"
	// MediaTypeRegistryV1 is the bundle format catalogd reads.
	MediaTypeRegistryV1 = "registry+v1"
)

// Content is an image unpacked on disk.
type Content struct {
	// Ref is the reference as given.
	Ref string
	// Digest is "sha256:<hex>" of what Ref resolved to (the image manifest,
	// or the index a multi-platform image is).
	Digest string
	// ImageDigest is the digest of the image manifest read.
	ImageDigest string
	// Dir is the content: the file-based catalog's directory of a catalog
	// image, the directory holding manifests/ and metadata/ of a bundle image.
	Dir string
	// Labels are the image config's labels.
	Labels map[string]string
	// Cached is true when nothing but the reference was downloaded.
	Cached bool
	// Bytes is the size of the unpacked content.
	Bytes int64
}

// meta is written next to an unpacked image (meta.json).
type meta struct {
	Ref         string            `json:"ref"`
	Digest      string            `json:"digest"`
	ImageDigest string            `json:"imageDigest"`
	Content     string            `json:"content"`
	Labels      map[string]string `json:"labels,omitempty"`
	Bytes       int64             `json:"bytes"`
	PulledAt    time.Time         `json:"pulledAt"`
}

const metaFile = "meta.json"

var flights singleflight.Group

// Resolve returns the digest the reference names now, asking the registry
// for a tag; a digest reference is returned as is, without a request.
func (c *Client) Resolve(ctx context.Context, ref string) (string, error) {
	r, err := c.reference(ref)
	if err != nil {
		return "", err
	}
	if d, ok := r.(name.Digest); ok {
		return d.DigestStr(), nil
	}
	desc, err := remote.Head(r, c.options(ctx)...)
	if err != nil {
		// Some registries answer HEAD without Docker-Content-Digest: GET then.
		d, gerr := remote.Get(r, c.options(ctx)...)
		if gerr != nil {
			return "", &PullError{Ref: ref, Step: "resolve", Err: classify(gerr)}
		}
		return d.Digest.String(), nil
	}
	return desc.Digest.String(), nil
}

// PullCatalog pulls a catalog image and returns its file-based catalog
// directory, unpacked under the cache by digest. A digest already unpacked
// is not downloaded again.
func (c *Client) PullCatalog(ctx context.Context, ref string) (*Content, error) {
	return c.pull(ctx, ref, KindCatalog)
}

// PullBundle pulls a registry+v1 bundle image; Content.Dir holds
// manifests/ and metadata/.
func (c *Client) PullBundle(ctx context.Context, ref string) (*Content, error) {
	return c.pull(ctx, ref, KindBundle)
}

func (c *Client) pull(ctx context.Context, ref, kind string) (*Content, error) {
	start := time.Now()
	content, err := c.pullOnce(ctx, ref, kind)
	if err == nil && kind == KindBundle && !content.Cached {
		c.bundlePulled(content)
	}
	if c.metrics != nil {
		result := ResultPulled
		switch {
		case err != nil:
			result = ResultFailure
		case content.Cached:
			result = ResultCached
		}
		c.metrics.pulls.WithLabelValues(kind, result).Inc()
		c.metrics.duration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	}
	return content, err
}

func (c *Client) pullOnce(ctx context.Context, ref, kind string) (*Content, error) {
	digest, err := c.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	if content, ok := c.cached(kind, digest, ref); ok {
		return content, nil
	}
	v, err, _ := flights.Do(c.cacheDir+"\x00"+kind+"\x00"+digest, func() (any, error) {
		if content, ok := c.cached(kind, digest, ref); ok {
			return content, nil
		}
		return c.download(ctx, ref, kind, digest)
	})
	if err != nil {
		return nil, err
	}
	out := *v.(*Content)
	out.Ref = ref
	return &out, nil
}

// entryDir is where an image of the kind and digest is unpacked.
func (c *Client) entryDir(kind, digest string) string {
	return filepath.Join(c.cacheDir, kind+"s", strings.Replace(digest, ":", "-", 1))
}

// cached returns the unpacked image when the cache has it, and marks it used.
func (c *Client) cached(kind, digest, ref string) (*Content, bool) {
	dir := c.entryDir(kind, digest)
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, false
	}
	var m meta
	if err := json.Unmarshal(data, &m); err != nil || m.Digest != digest || !filepath.IsLocal(filepath.FromSlash(m.Content)) {
		return nil, false
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(dir, metaFile), now, now)
	return &Content{Ref: ref, Digest: digest, ImageDigest: m.ImageDigest, Dir: filepath.Join(dir, "root", filepath.FromSlash(m.Content)),
		Labels: m.Labels, Cached: true, Bytes: m.Bytes}, true
}

func (c *Client) maxBytes(kind string) int64 {
	if kind == KindBundle {
		return c.limits.MaxBundleBytes
	}
	return c.limits.MaxCatalogBytes
}

func (c *Client) download(ctx context.Context, ref, kind, digest string) (*Content, error) {
	r, err := c.reference(ref)
	if err != nil {
		return nil, err
	}
	pinned := r.Context().Digest(digest)
	opts := c.options(ctx, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
	desc, err := remote.Get(pinned, opts...)
	if err != nil {
		return nil, &PullError{Ref: ref, Step: "manifest " + digest, Err: classify(err)}
	}
	var img v1.Image
	switch desc.MediaType {
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		img, err = desc.Image()
	case types.OCIImageIndex, types.DockerManifestList:
		img, err = c.platformImage(desc)
	default:
		return nil, &PullError{Ref: ref, Step: "manifest " + digest, Err: fmt.Errorf("%w: %q is not an image manifest or index", ErrMediaType, desc.MediaType)}
	}
	if err != nil {
		return nil, &PullError{Ref: ref, Step: "manifest " + digest, Err: classify(err)}
	}
	imgDigest, err := img.Digest()
	if err != nil {
		return nil, &PullError{Ref: ref, Step: "manifest", Err: err}
	}
	content, err := c.unpackImage(ref, kind, digest, img)
	if err != nil {
		return nil, err
	}
	content.ImageDigest = imgDigest.String()
	return content, nil
}

// platformImage picks linux/GOARCH from an index, else linux/amd64, else
// the only image: a catalog's content is the same on every platform.
func (c *Client) platformImage(desc *remote.Descriptor) (v1.Image, error) {
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var images []v1.Descriptor
	for _, m := range im.Manifests {
		if m.MediaType == types.OCIManifestSchema1 || m.MediaType == types.DockerManifestSchema2 {
			if m.Platform != nil && m.Platform.OS == "unknown" {
				continue // attestations
			}
			images = append(images, m)
		}
	}
	for _, arch := range []string{runtime.GOARCH, "amd64"} {
		for _, m := range images {
			if m.Platform != nil && m.Platform.OS == "linux" && m.Platform.Architecture == arch {
				return idx.Image(m.Digest)
			}
		}
	}
	if len(images) == 1 {
		return idx.Image(images[0].Digest)
	}
	return nil, fmt.Errorf("%w: the index has no image for linux/%s or linux/amd64", ErrNotFound, runtime.GOARCH)
}

var layerMediaTypes = map[types.MediaType]bool{
	types.OCILayer: true, types.OCIUncompressedLayer: true, types.OCILayerZStd: true,
	types.DockerLayer: true, types.DockerUncompressedLayer: true,
}

// contentRoots returns the trees to unpack and, relative to the unpack
// root, the content directory.
func contentRoots(kind string, labels map[string]string) (keep []string, content string, err error) {
	clean := func(label, value string) (string, error) {
		p := strings.Trim(path.Clean("/"+value), "/")
		if p == "" || strings.Contains(value, "..") {
			return "", fmt.Errorf("%w: label %s=%q does not name a directory below the image root", ErrNoContent, label, value)
		}
		return p, nil
	}
	if kind == KindCatalog {
		v, ok := labels[LabelConfigs]
		if !ok || v == "" {
			v = DefaultConfigsDir
		}
		p, err := clean(LabelConfigs, v)
		if err != nil {
			return nil, "", err
		}
		return []string{p}, p, nil
	}
	if mt, ok := labels[LabelMediaType]; ok && mt != MediaTypeRegistryV1 {
		return nil, "", fmt.Errorf("%w: bundle label %s=%q: only %s bundles are read", ErrMediaType, LabelMediaType, mt, MediaTypeRegistryV1)
	}
	for label, want := range map[string]string{LabelManifests: "manifests", LabelMetadata: "metadata"} {
		v, ok := labels[label]
		if !ok || v == "" {
			continue
		}
		p, err := clean(label, v)
		if err != nil {
			return nil, "", err
		}
		if p != want {
			return nil, "", fmt.Errorf("%w: bundle label %s=%q: a registry+v1 bundle keeps these in %s/", ErrNoContent, label, v, want)
		}
	}
	return []string{"manifests", "metadata"}, ".", nil
}

func (c *Client) unpackImage(ref, kind, digest string, img v1.Image) (*Content, error) {
	fail := func(step string, err error) error { return &PullError{Ref: ref, Step: step, Err: err} }
	m, err := img.Manifest()
	if err != nil {
		return nil, fail("manifest", classify(err))
	}
	if len(m.Layers) > c.limits.MaxLayers {
		return nil, fail("manifest", fmt.Errorf("%w: %d layers, more than %d", ErrLimit, len(m.Layers), c.limits.MaxLayers))
	}
	maxBytes := c.maxBytes(kind)
	var total int64
	for i, l := range m.Layers {
		if !layerMediaTypes[l.MediaType] {
			return nil, fail(fmt.Sprintf("layer %d (%s)", i, l.Digest), fmt.Errorf("%w: %q is not an OCI or Docker layer", ErrMediaType, l.MediaType))
		}
		total += l.Size
	}
	if total > maxBytes {
		return nil, fail("manifest", fmt.Errorf("%w: layers of %d bytes, more than %d", ErrLimit, total, maxBytes))
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, fail("config "+m.Config.Digest.String(), classify(err))
	}
	if sum := sha256.Sum256(rawCfg); "sha256:"+hex.EncodeToString(sum[:]) != m.Config.Digest.String() {
		return nil, fail("config "+m.Config.Digest.String(), fmt.Errorf("%w: the config hashes to sha256:%x", ErrDigestMismatch, sum))
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(rawCfg, &cfg); err != nil {
		return nil, fail("config "+m.Config.Digest.String(), fmt.Errorf("%w: not an image config: %w", ErrMediaType, err))
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fail("config", fmt.Errorf("%w: %d diff IDs for %d layers", ErrMediaType, len(cfg.RootFS.DiffIDs), len(m.Layers)))
	}
	labels := cfg.Config.Labels
	keep, contentRel, err := contentRoots(kind, labels)
	if err != nil {
		return nil, fail("labels", err)
	}

	// Directories the cache creates are 0700; an existing cache directory
	// keeps its mode (it may be shared, such as a volume's root).
	tmpRoot := filepath.Join(c.cacheDir, "tmp")
	if err := os.MkdirAll(tmpRoot, 0o700); err != nil {
		return nil, fail("cache", err)
	}
	stage, err := os.MkdirTemp(tmpRoot, kind+"-")
	if err != nil {
		return nil, fail("cache", err)
	}
	defer os.RemoveAll(stage)
	if err := os.Mkdir(filepath.Join(stage, "root"), 0o755); err != nil {
		return nil, fail("cache", err)
	}
	root, err := os.OpenRoot(filepath.Join(stage, "root"))
	if err != nil {
		return nil, fail("cache", err)
	}
	defer func() { _ = root.Close() }()
	u := newUnpacker(root, keep, c.limits, maxBytes)
	layers, err := img.Layers()
	if err != nil {
		return nil, fail("layers", classify(err))
	}
	var downloaded int64
	for i, l := range layers {
		step := fmt.Sprintf("layer %d (%s)", i, m.Layers[i].Digest)
		n, err := c.applyLayer(u, l, m.Layers[i], cfg.RootFS.DiffIDs[i], maxBytes-downloaded)
		downloaded += n
		if err != nil {
			return nil, fail(step, err)
		}
	}
	if c.metrics != nil {
		c.metrics.bytes.WithLabelValues(kind).Add(float64(downloaded))
	}
	st, err := root.Stat(contentRel)
	if err != nil || !st.IsDir() {
		where := "/" + contentRel
		if kind == KindBundle {
			where = "/manifests and /metadata"
		}
		return nil, fail("unpack", fmt.Errorf("%w: the image has no directory %s", ErrNoContent, where))
	}
	if kind == KindBundle {
		if _, err := root.Stat("metadata/annotations.yaml"); err != nil {
			return nil, fail("unpack", fmt.Errorf("%w: the image has no /metadata/annotations.yaml", ErrNoContent))
		}
	}
	mt := meta{Ref: ref, Digest: digest, Content: contentRel, Labels: labels, Bytes: u.read, PulledAt: time.Now().UTC()}
	if d, err := img.Digest(); err == nil {
		mt.ImageDigest = d.String()
	}
	data, err := json.Marshal(mt)
	if err != nil {
		return nil, fail("cache", err)
	}
	if err := os.WriteFile(filepath.Join(stage, metaFile), data, 0o644); err != nil {
		return nil, fail("cache", err)
	}
	final := c.entryDir(kind, digest)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return nil, fail("cache", err)
	}
	if err := os.Rename(stage, final); err != nil {
		// Another process unpacked the same digest first: use that one.
		if content, ok := c.cached(kind, digest, ref); ok {
			content.Cached = false
			return content, nil
		}
		return nil, fail("cache", err)
	}
	return &Content{Ref: ref, Digest: digest, ImageDigest: mt.ImageDigest, Dir: filepath.Join(final, "root", filepath.FromSlash(contentRel)),
		Labels: labels, Bytes: u.read}, nil
}

// applyLayer downloads one layer, checking its digest and diff ID, and
// unpacks it; it returns the compressed bytes read.
func (c *Client) applyLayer(u *unpacker, l v1.Layer, desc v1.Descriptor, diffID v1.Hash, budget int64) (int64, error) {
	if desc.Digest.Algorithm != "sha256" || diffID.Algorithm != "sha256" {
		return 0, fmt.Errorf("%w: only sha256 digests are checked", ErrMediaType)
	}
	rc, err := l.Compressed()
	if err != nil {
		return 0, classify(err)
	}
	defer rc.Close()
	var downloaded int64
	blobHash := sha256.New()
	counted := &countingReader{r: rc, n: &downloaded, limit: budget, what: "compressed bytes"}
	br := bufio.NewReaderSize(io.TeeReader(counted, blobHash), 64<<10)
	tarStream, err := decompress(br)
	if err != nil {
		return downloaded, c.blobError(err, blobHash, desc, br)
	}
	defer tarStream.Close()
	diffHash := sha256.New()
	uncompressed := &countingReader{r: tarStream, n: &u.read, limit: u.limit, what: "unpacked bytes"}
	stream := io.TeeReader(uncompressed, diffHash)
	if err := u.layer(stream); err != nil {
		if errors.Is(err, ErrLimit) || errors.Is(err, ErrUnsafe) {
			return downloaded, err
		}
		return downloaded, c.blobError(err, blobHash, desc, br)
	}
	// What follows the tar end is part of the diff ID and the digest.
	if _, err := io.Copy(io.Discard, stream); err != nil {
		return downloaded, c.blobError(err, blobHash, desc, br)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return downloaded, c.blobError(err, blobHash, desc, br)
	}
	if got := "sha256:" + hex.EncodeToString(blobHash.Sum(nil)); got != desc.Digest.String() {
		return downloaded, fmt.Errorf("%w: the blob hashes to %s", ErrDigestMismatch, got)
	}
	if got := "sha256:" + hex.EncodeToString(diffHash.Sum(nil)); got != diffID.String() {
		return downloaded, fmt.Errorf("%w: the uncompressed layer hashes to %s, the config's diff ID is %s", ErrDigestMismatch, got, diffID)
	}
	return downloaded, nil
}

// blobError explains a failure to read a layer: when the bytes read so far
// plus the rest of the blob do not hash to the digest, the content is
// corrupt, whatever the decompressor said.
func (c *Client) blobError(err error, h hash.Hash, desc v1.Descriptor, rest io.Reader) error {
	if errors.Is(err, ErrLimit) {
		return err
	}
	_, cerr := io.Copy(io.Discard, io.LimitReader(rest, desc.Size+1))
	if cerr == nil {
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != desc.Digest.String() {
			return fmt.Errorf("%w: the blob hashes to %s (%w)", ErrDigestMismatch, got, err)
		}
	} else if mismatch := classify(cerr); errors.Is(mismatch, ErrDigestMismatch) {
		return fmt.Errorf("%w (%w)", mismatch, err)
	}
	return classify(err)
}
