package catalog

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"time"
)

// dirFile is one manifest file of a bundle directory on disk, as it was
// when the catalog was loaded.
type dirFile struct {
	path    string
	size    int64
	modTime time.Time
}

// dirObject is one object of a bundle directory: its head, checked at
// load, and where its YAML (or JSON) document lies in its file.
type dirObject struct {
	file                   *dirFile
	off, n                 int64
	apiVersion, kind, name string
}

// dirManifests are the objects of a registry+v1 bundle directory on disk.
// Only their locations are kept; the documents are read and converted
// again on use, exactly as at load, and must hash to the manifests digest
// computed then.
type dirManifests struct {
	objects []dirObject
	sum     [sha256.Size]byte
	cache   *manifestCache
}

func (d *dirManifests) count() int { return len(d.objects) }

func (d *dirManifests) setCache(c *manifestCache) { d.cache = c }

func (d *dirManifests) manifests() ([]Manifest, error) {
	if d.cache != nil {
		if ms, ok := d.cache.Get(d); ok {
			return ms, nil
		}
	}
	ms, err := d.decode()
	if err == nil && d.cache != nil {
		d.cache.Put(d, ms, ManifestsSize(ms))
	}
	return ms, err
}

func (d *dirManifests) decode() ([]Manifest, error) {
	out := make([]Manifest, 0, len(d.objects))
	h := newManifestsHash()
	var (
		cur  *dirFile
		data []byte
	)
	for _, o := range d.objects {
		if o.file != cur {
			var err error
			if data, err = o.file.read(); err != nil {
				return nil, err
			}
			cur = o.file
		}
		if o.off < 0 || o.n < 0 || o.off+o.n > int64(len(data)) {
			return nil, fmt.Errorf("%s changed since the catalog was loaded; a reload is pending", o.file.path)
		}
		conv, err := convertManifestYAML(data[o.off : o.off+o.n])
		if err != nil {
			return nil, fmt.Errorf("reading bundle manifests from %s: %w", o.file.path, err)
		}
		m := conv.m
		m.APIVersion, m.Kind, m.Name = o.apiVersion, o.kind, o.name
		h.add(m)
		out = append(out, m)
	}
	if h.sum() != d.sum {
		return nil, fmt.Errorf("the manifests of %s changed since the catalog was loaded (they no longer hash to %s); a reload is pending", d.dir(), sha256Digest(d.sum))
	}
	return out, nil
}

// dir names the bundle's manifests for errors.
func (d *dirManifests) dir() string {
	if len(d.objects) == 0 {
		return "the bundle"
	}
	return d.objects[0].file.path
}

// read returns the file's bytes, refusing a file whose size or modification
// time changed since load.
func (f *dirFile) read() ([]byte, error) {
	data, st, err := readStamped(f.path, f.size)
	if err != nil {
		return nil, fmt.Errorf("reading bundle manifests: %w", err)
	}
	if st.Size() != f.size || !st.ModTime().Equal(f.modTime) {
		return nil, fmt.Errorf("%s changed since the catalog was loaded; a reload is pending", f.path)
	}
	return data, nil
}

// readStamped reads a file and the file information of the same open file:
// the size it had when opened (a file that shrank meanwhile is an error),
// and nothing when that size is not want (want < 0: any size).
func readStamped(path string, want int64) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if want >= 0 && st.Size() != want {
		return nil, st, nil
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, err
	}
	return data, st, nil
}
