package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
)

// IndexFormatVersion is the layout of the on-disk index (modelindex.go);
// an index of another version, or written by a build of another
// buildVersion, is ignored and rebuilt.
const IndexFormatVersion = 3

// DefaultIndexMaxBytes bounds one index file, written or read.
const DefaultIndexMaxBytes = 512 << 20

const (
	indexMagic  = "FERRYIDX"
	indexSuffix = ".idx"
	// indexHeader is the magic, the format version, the build version, the
	// payload's length and its CRC-32C.
	indexHeader = len(indexMagic) + 4 + 4 + 8 + 4
)

// indexCRC is the checksum of index payloads: it finds truncation and
// damage, at memory speed. It is no defence against someone who can write
// the directory, which must be catalogd's own.
var indexCRC = crc32.MakeTable(crc32.Castagnoli)

// DefaultIndexDir is where catalogd keeps catalog indexes by default.
func DefaultIndexDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ferry", "catalog-index")
	}
	return filepath.Join(os.TempDir(), "ferry-catalog-index")
}

// IndexConfig turns on the on-disk index (see WithIndex).
type IndexConfig struct {
	// Dir holds the index files; "" turns the index off.
	Dir string
	// MaxBytes bounds one index file (0: DefaultIndexMaxBytes).
	MaxBytes int64
	// Log receives a line for every index read, written, ignored or removed.
	Log logr.Logger
}

// WithIndex keeps the built model of every catalog whose sources all have
// a Fingerprint in cfg.Dir, keyed by those fingerprints, the index format
// and the build version, and reads it instead of parsing and building when
// the same sources are loaded again. An index that is unreadable,
// truncated, of another version or whose checksum does not match is
// ignored, logged and rewritten. The directory keeps the index used last
// and the one before it.
func WithIndex(cfg IndexConfig) Option { return func(o *options) { o.index = cfg } }

// indexKey names the index of sources: "" when some source has no
// fingerprint or is not a file-based catalog on disk.
func indexKey(sources []Source) string {
	if len(sources) == 0 {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "ferry-index\x00%d\x00%d\x00", IndexFormatVersion, buildVersion)
	for _, s := range sources {
		if s.Fingerprint == "" || s.Dir == "" || s.FS != nil || s.Format != FormatFBC || s.Overlay {
			return ""
		}
		abs, err := filepath.Abs(s.Dir)
		if err != nil {
			return ""
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", s.Name, abs, s.Fingerprint)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// IndexError says why an index file was not used.
type IndexError struct {
	Path   string
	Reason string
}

func (e *IndexError) Error() string { return "catalog index " + e.Path + ": " + e.Reason }

func (ic IndexConfig) maxBytes() int64 {
	if ic.MaxBytes > 0 {
		return ic.MaxBytes
	}
	return DefaultIndexMaxBytes
}

func (ic IndexConfig) path(key string) string { return filepath.Join(ic.Dir, key+indexSuffix) }

// readIndex returns the built model indexed under key, with its problems
// not yet sorted and its bundles listed by image only; os.ErrNotExist
// (wrapped) when there is none.
func (ic IndexConfig) readIndex(key string, sources []Source) (*Catalog, []imageOnly, error) {
	p := ic.path(key)
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() > ic.maxBytes()+int64(indexHeader) {
		return nil, nil, &IndexError{Path: p, Reason: fmt.Sprintf("%d bytes, over the limit of %d", st.Size(), ic.maxBytes())}
	}
	if st.Size() < int64(indexHeader) {
		return nil, nil, &IndexError{Path: p, Reason: "truncated header"}
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, &IndexError{Path: p, Reason: "reading: " + err.Error()}
	}
	h := data[:indexHeader]
	if string(h[:len(indexMagic)]) != indexMagic {
		return nil, nil, &IndexError{Path: p, Reason: "not an index file"}
	}
	h = h[len(indexMagic):]
	if v := binary.BigEndian.Uint32(h); v != IndexFormatVersion {
		return nil, nil, &IndexError{Path: p, Reason: fmt.Sprintf("format version %d, this catalogd reads %d", v, IndexFormatVersion)}
	}
	if v := binary.BigEndian.Uint32(h[4:]); v != buildVersion {
		return nil, nil, &IndexError{Path: p, Reason: fmt.Sprintf("built by build version %d, this catalogd builds version %d", v, buildVersion)}
	}
	payload := data[indexHeader:]
	if n := binary.BigEndian.Uint64(h[8:]); n != uint64(len(payload)) {
		return nil, nil, &IndexError{Path: p, Reason: fmt.Sprintf("truncated or overlong: %d payload bytes, the header says %d", len(payload), n)}
	}
	if crc32.Checksum(payload, indexCRC) != binary.BigEndian.Uint32(h[16:]) {
		return nil, nil, &IndexError{Path: p, Reason: "checksum mismatch (corrupt)"}
	}
	c, images, err := decodeModel(payload, sources)
	if err != nil {
		return nil, nil, &IndexError{Path: p, Reason: "decoding: " + err.Error()}
	}
	if err := checkFiles(c); err != nil {
		return nil, nil, &IndexError{Path: p, Reason: err.Error()}
	}
	return c, images, nil
}

// checkFiles makes sure that every catalog file the index points into is
// the one indexed: same size and modification time.
func checkFiles(c *Catalog) error {
	seen := map[string]bool{}
	for _, p := range c.Packages {
		for _, b := range p.Bundles {
			r, ok := b.manifests.(*blobRef)
			if !ok || seen[r.path] {
				continue
			}
			seen[r.path] = true
			st, err := os.Stat(r.path)
			if err != nil {
				return fmt.Errorf("catalog file: %w", err)
			}
			if st.Size() != r.size || !st.ModTime().Equal(r.modTime) {
				return fmt.Errorf("catalog file %s changed since it was indexed", r.path)
			}
		}
	}
	return nil
}

// encodeIndex is the content of an index file: header and payload.
func encodeIndex(c *Catalog, images []imageOnly, sources []Source) ([]byte, error) {
	payload, err := encodeModel(c, images, sources)
	if err != nil {
		return nil, err
	}
	out := make([]byte, indexHeader, indexHeader+len(payload))
	copy(out, indexMagic)
	h := out[len(indexMagic):]
	binary.BigEndian.PutUint32(h, IndexFormatVersion)
	binary.BigEndian.PutUint32(h[4:], buildVersion)
	binary.BigEndian.PutUint64(h[8:], uint64(len(payload)))
	binary.BigEndian.PutUint32(h[16:], crc32.Checksum(payload, indexCRC))
	return append(out, payload...), nil
}

// writeIndex writes the built model under key, atomically.
func (ic IndexConfig) writeIndex(key string, c *Catalog, images []imageOnly, sources []Source) error {
	data, err := encodeIndex(c, images, sources)
	if err != nil {
		return fmt.Errorf("encoding catalog index: %w", err)
	}
	if n := int64(len(data) - indexHeader); n > ic.maxBytes() {
		return &IndexError{Path: ic.path(key), Reason: fmt.Sprintf("%d bytes, over the limit of %d; not written", n, ic.maxBytes())}
	}
	if err := os.MkdirAll(ic.Dir, 0o700); err != nil {
		return fmt.Errorf("catalog index directory: %w", err)
	}
	tmp, err := os.CreateTemp(ic.Dir, key+indexSuffix+".tmp*")
	if err != nil {
		return fmt.Errorf("writing catalog index: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	_, err = tmp.Write(data)
	err = errors.Join(err, tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), ic.path(key))
	}
	if err != nil {
		return fmt.Errorf("writing catalog index %s: %w", ic.path(key), err)
	}
	return nil
}

// prune keeps the index of key and the most recently used other index,
// and removes every other index and leftover temporary file.
func (ic IndexConfig) prune(key string) error {
	entries, err := os.ReadDir(ic.Dir)
	if err != nil {
		return err
	}
	type file struct {
		name string
		mod  time.Time
	}
	var others []file
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.Contains(name, indexSuffix) || name == key+indexSuffix {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if !strings.HasSuffix(name, indexSuffix) {
			// A temporary file another writer may still be filling: removed once stale.
			if time.Since(info.ModTime()) > time.Hour {
				errs = append(errs, os.Remove(filepath.Join(ic.Dir, name)))
			}
			continue
		}
		others = append(others, file{name, info.ModTime()})
	}
	sort.Slice(others, func(i, j int) bool { return others[i].mod.After(others[j].mod) })
	for i, f := range others {
		if i == 0 {
			continue // the previous catalog
		}
		ic.Log.Info("removing catalog index no longer served", "file", f.name)
		errs = append(errs, os.Remove(filepath.Join(ic.Dir, f.name)))
	}
	return errors.Join(errs...)
}

// loadIndexed returns the built model of sources from the index, or
// parses and builds it and writes the index.
func (ic IndexConfig) loadIndexed(key string, sources []Source, parse func() (*Catalog, []imageOnly, error)) (*Catalog, []imageOnly, bool, error) {
	start := time.Now()
	c, images, err := ic.readIndex(key, sources)
	if err == nil {
		now := time.Now()
		_ = os.Chtimes(ic.path(key), now, now) // marks it the one used last, for prune
		ic.Log.Info("catalog read from its index", "file", ic.path(key), "duration", time.Since(start).Round(time.Millisecond))
		if err := ic.prune(key); err != nil {
			ic.Log.Error(err, "pruning catalog indexes")
		}
		return c, images, true, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		ic.Log.Error(err, "ignoring catalog index; parsing the catalog and rebuilding it")
	}
	c, images, err = parse()
	if err != nil {
		return nil, nil, false, err
	}
	if err := ic.writeIndex(key, c, images, sources); err != nil {
		ic.Log.Error(err, "catalog index not written; the next start parses the catalog again")
	} else {
		ic.Log.Info("catalog index written", "file", ic.path(key))
	}
	if err := ic.prune(key); err != nil {
		ic.Log.Error(err, "pruning catalog indexes")
	}
	return c, images, false, nil
}

// model returns the built model of sources (problems not sorted, bundle
// images not resolved), from the index when o keeps one for them.
func (o options) model(ctx context.Context, sources []Source) (*Catalog, []imageOnly, bool, error) {
	parse := func() (*Catalog, []imageOnly, error) { return parseAndBuild(ctx, sources) }
	if key := indexKey(sources); key != "" && o.index.Dir != "" {
		return o.index.loadIndexed(key, sources, parse)
	}
	c, images, err := parse()
	return c, images, false, err
}

// parseAndBuild parses the sources and builds the model.
func parseAndBuild(ctx context.Context, sources []Source) (*Catalog, []imageOnly, error) {
	all, problems, err := parseSources(ctx, sources)
	if err != nil {
		return nil, nil, err
	}
	sink := &problemSink{list: problems}
	c := build(all, sink)
	c.Problems = sink.list
	return c, imageOnlyBundles(all, c), nil
}
