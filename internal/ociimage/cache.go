package ociimage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Cache layout under the cache directory:
//
//	catalogs/sha256-<hex>/meta.json     what was pulled, when, the labels
//	catalogs/sha256-<hex>/root/<configs>/  the file-based catalog
//	bundles/sha256-<hex>/root/{manifests,metadata}/
//	refs.json                           the digest each reference last resolved to
//	tmp/                                images being unpacked
const refsFile = "refs.json"

// staleTemp is how old an unpacking directory must be to be removed as
// left over from a process that stopped mid-pull.
const staleTemp = time.Hour

var refsMu sync.Mutex

// Remember records that ref resolved to digest, for LastKnown.
func (c *Client) Remember(kind, ref, digest string) error {
	refsMu.Lock()
	defer refsMu.Unlock()
	refs := c.readRefs()
	key := kind + " " + ref
	if refs[key] == digest {
		return nil
	}
	refs[key] = digest
	data, err := json.MarshalIndent(refs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.cacheDir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.cacheDir, refsFile+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(c.cacheDir, refsFile))
}

func (c *Client) readRefs() map[string]string {
	refs := map[string]string{}
	data, err := os.ReadFile(filepath.Join(c.cacheDir, refsFile))
	if err == nil {
		_ = json.Unmarshal(data, &refs)
	}
	return refs
}

// LastKnown returns the unpacked image ref last resolved to, when the cache
// still has it: what to serve when the registry cannot be reached at start.
func (c *Client) LastKnown(kind, ref string) (*Content, bool) {
	refsMu.Lock()
	digest := c.readRefs()[kind+" "+ref]
	refsMu.Unlock()
	if digest == "" {
		return nil, false
	}
	return c.cached(kind, digest, ref)
}

// PruneCatalogs removes every unpacked catalog image but those of the
// given digests.
func (c *Client) PruneCatalogs(keep ...string) error {
	dir := filepath.Join(c.cacheDir, KindCatalog+"s")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		digest := strings.Replace(e.Name(), "-", ":", 1)
		if slices.Contains(keep, digest) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// bundlePulled counts a bundle image just unpacked and, once the bundle
// images on disk may exceed Limits.BundleCacheBytes, removes the least
// recently used (never this one). The directory is scanned only then, so
// many pulls in a row do not each read every entry.
func (c *Client) bundlePulled(content *Content) {
	c.bundleMu.Lock()
	defer c.bundleMu.Unlock()
	if c.bundleBytes >= 0 {
		c.bundleBytes += content.Bytes
		if c.bundleBytes <= c.limits.BundleCacheBytes {
			return
		}
	}
	total, err := c.pruneBundles(content.Digest)
	if err != nil {
		c.bundleBytes = -1
		return
	}
	c.bundleBytes = total
}

// PruneBundles removes the least recently used unpacked bundle images
// until those left take at most Limits.BundleCacheBytes, never the ones
// of the digests in keep. Pulls call it when the cache may be over the
// limit.
func (c *Client) PruneBundles(keep ...string) error {
	c.bundleMu.Lock()
	defer c.bundleMu.Unlock()
	total, err := c.pruneBundles(keep...)
	c.bundleBytes = total
	if err != nil {
		c.bundleBytes = -1
	}
	return err
}

// pruneBundles is PruneBundles with bundleMu held; it returns the bytes left.
func (c *Client) pruneBundles(keep ...string) (int64, error) {
	dir := filepath.Join(c.cacheDir, KindBundle+"s")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	type entry struct {
		name  string
		used  time.Time
		bytes int64
	}
	var list []entry
	var total int64
	for _, e := range ents {
		st, err := os.Stat(filepath.Join(dir, e.Name(), metaFile))
		if err != nil {
			continue
		}
		var m meta
		if data, err := os.ReadFile(filepath.Join(dir, e.Name(), metaFile)); err == nil {
			_ = json.Unmarshal(data, &m)
		}
		list = append(list, entry{name: e.Name(), used: st.ModTime(), bytes: m.Bytes})
		total += m.Bytes
	}
	sort.Slice(list, func(i, j int) bool { return list[i].used.Before(list[j].used) })
	var errs []error
	for _, e := range list {
		if total <= c.limits.BundleCacheBytes {
			break
		}
		if slices.Contains(keep, strings.Replace(e.name, "-", ":", 1)) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.name)); err != nil {
			errs = append(errs, err)
			continue
		}
		total -= e.bytes
	}
	return total, errors.Join(errs...)
}

// CleanTemp removes unpacking directories left by a process that stopped
// mid-pull (older than an hour, so that another process's pull in progress
// is left alone).
func (c *Client) CleanTemp() error {
	dir := filepath.Join(c.cacheDir, "tmp")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	var errs []error
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < staleTemp {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CacheDir is the directory images are unpacked into.
func (c *Client) CacheDir() string { return c.cacheDir }

// CachedBundle returns the unpacked bundle image ref names without asking a
// registry: for a digest reference, the cache's entry of that digest; for
// a tag, the digest it last resolved to.
func (c *Client) CachedBundle(ref string) (*Content, bool) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, false
	}
	if d, ok := r.(interface{ DigestStr() string }); ok {
		return c.cached(KindBundle, d.DigestStr(), ref)
	}
	return c.LastKnown(KindBundle, ref)
}
