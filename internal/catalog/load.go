package catalog

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ferrydev/ferry/internal/lru"
)

// Format is the on-disk layout of a catalog source.
type Format string

// Formats a source can have.
const (
	// FormatAuto detects the format from the tree.
	FormatAuto Format = ""
	// FormatFBC is a file-based catalog.
	FormatFBC Format = "fbc"
	// FormatBundle is a single registry+v1 bundle directory.
	FormatBundle Format = "bundle"
	// FormatBundleTree is a tree of <package>/<version>/ bundle directories.
	FormatBundleTree Format = "bundle-tree"
)

// Source is one root to load a catalog from.
type Source struct {
	// Name prefixes every path in problems, e.g. the directory as the user gave it.
	Name string
	// FS is the tree. When Dir is set and FS is nil, os.DirFS(Dir) is used.
	FS fs.FS
	// Dir, when set, is the directory on disk; large file-based catalogs then
	// keep bundle manifests on disk instead of in memory.
	Dir string
	// Format of the tree; FormatAuto detects it.
	Format Format
	// Overlay, for a bundle or bundle-tree source, adds its bundles to the
	// package of the same name read from an earlier bundle or bundle-tree
	// source (channels and edges are then computed over both), instead of
	// declaring that package a second time. Packages no earlier registry+v1
	// source has are served as the overlay's own. catalogd's published
	// bundles are such a source.
	Overlay bool
	// Fingerprint, when set, names the tree's content exactly (e.g. the
	// digest of the catalog image it was unpacked from, whose unpacked files
	// never change); with WithIndex, a catalog whose sources all have one is
	// read from its on-disk index instead of parsed.
	Fingerprint string
}

// DirSource is the source for a directory on disk.
func DirSource(dir string) Source {
	return Source{Name: filepath.ToSlash(filepath.Clean(dir)), Dir: dir}
}

type options struct {
	strict       bool
	cacheBytes   int
	bundleImages BundleImages
	eagerImages  bool
	index        IndexConfig
}

// Option configures Load.
type Option func(*options)

// WithStrict refuses the whole catalog when any problem of severity error is
// found, instead of serving what is valid.
func WithStrict(strict bool) Option { return func(o *options) { o.strict = strict } }

// WithManifestCache sets how many bytes of decoded manifests the catalog
// keeps for bundles read from disk (default DefaultManifestCacheBytes; 0
// disables the cache).
func WithManifestCache(bytes int) Option { return func(o *options) { o.cacheBytes = bytes } }

// Load reads and validates the sources into one catalog. It returns an error
// only when a source cannot be read at all or, with WithStrict, when the
// catalog has errors (a *StrictError). Otherwise problems are in
// Catalog.Problems and the valid content is served.
func Load(ctx context.Context, sources []Source, opts ...Option) (*Catalog, error) {
	o := options{cacheBytes: DefaultManifestCacheBytes}
	for _, opt := range opts {
		opt(&o)
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("no catalog source given")
	}
	c, images, indexed, err := o.model(ctx, sources)
	if err != nil {
		return nil, err
	}
	sink := &problemSink{list: c.Problems}
	names := make([]string, 0, len(sources))
	for _, s := range sources {
		if s.Name == "" {
			s.Name = "."
		}
		names = append(names, s.Name)
	}
	if o.bundleImages != nil {
		if err := resolveBundleImages(ctx, c, images, o, sink); err != nil {
			return nil, err
		}
	}
	c.FromIndex = indexed
	if o.cacheBytes > 0 {
		cache := lru.New[diskManifests, []Manifest](int64(o.cacheBytes))
		c.manifests = cache
		for _, p := range c.Packages {
			for _, b := range p.Bundles {
				if r, ok := b.manifests.(diskManifests); ok {
					r.setCache(cache)
				}
			}
		}
	}
	c.Sources = names
	c.Problems = sink.list
	c.Problems.sort()
	c.LoadedAt = time.Now()
	if o.strict && len(c.Problems.Errors()) > 0 {
		return nil, &StrictError{Problems: c.Problems}
	}
	return c, nil
}

// parseSources reads every source into one flat list of documents and the
// problems found reading them.
func parseSources(ctx context.Context, sources []Source) (*declConfig, Problems, error) {
	all := &declConfig{}
	sink := &problemSink{}
	// Each source becomes a part, merged in source order once overlays have
	// joined their packages.
	type part struct {
		cfg  *declConfig
		pkgs []*treePackage
	}
	var parts []part
	trees := map[string]*treePackage{}
	for _, s := range sources {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if s.FS == nil {
			if s.Dir == "" {
				return nil, nil, fmt.Errorf("catalog source %q has neither a directory nor a file system", s.Name)
			}
			st, err := os.Stat(s.Dir)
			if err != nil {
				return nil, nil, fmt.Errorf("catalog source: %w", err)
			}
			if !st.IsDir() {
				return nil, nil, fmt.Errorf("catalog source %s is not a directory", s.Dir)
			}
			s.FS = os.DirFS(s.Dir)
		}
		if s.Name == "" {
			s.Name = "."
		}
		local := &problemSink{}
		format := s.Format
		if format == FormatAuto {
			format = DetectFormat(s.FS)
		}
		if format == FormatBundle || format == FormatBundleTree {
			var pkgs []*treePackage
			if format == FormatBundle {
				pkgs = readBundle(s.FS, s.Dir, local)
			} else {
				pkgs = readBundleTree(s.FS, s.Dir, local)
			}
			prefixTree(pkgs, s.Name)
			prefix(&declConfig{}, local, s.Name)
			sink.list = append(sink.list, local.list...)
			kept := pkgs[:0]
			for _, tp := range pkgs {
				if prev := trees[tp.name]; prev != nil && s.Overlay {
					prev.bundles = append(prev.bundles, tp.bundles...)
					continue
				}
				if trees[tp.name] == nil && !s.Overlay {
					trees[tp.name] = tp
				}
				kept = append(kept, tp)
			}
			parts = append(parts, part{pkgs: kept})
			continue
		}
		cfg, err := loadSource(ctx, s, local)
		if err != nil {
			return nil, nil, fmt.Errorf("loading catalog %s: %w", s.Name, err)
		}
		prefix(cfg, local, s.Name)
		parts = append(parts, part{cfg: cfg})
		sink.list = append(sink.list, local.list...)
	}
	for _, p := range parts {
		if p.cfg == nil {
			p.cfg = emitPackages(p.pkgs, sink)
		}
		all.merge(p.cfg)
	}
	return all, sink.list, nil
}

func loadSource(ctx context.Context, s Source, sink *problemSink) (*declConfig, error) {
	format := s.Format
	if format == FormatAuto {
		format = DetectFormat(s.FS)
	}
	switch format {
	case FormatBundle:
		return emitPackages(readBundle(s.FS, s.Dir, sink), sink), nil
	case FormatBundleTree:
		return emitPackages(readBundleTree(s.FS, s.Dir, sink), sink), nil
	case FormatFBC:
		return loadFBC(ctx, s, sink)
	default:
		return nil, fmt.Errorf("unknown catalog format %q", format)
	}
}

// DetectFormat tells a bundle, a bundle tree and a file-based catalog apart.
func DetectFormat(fsys fs.FS) Format {
	if exists(fsys, "metadata/annotations.yaml") {
		return FormatBundle
	}
	top, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return FormatFBC
	}
	for _, p := range top {
		if !p.IsDir() {
			continue
		}
		if exists(fsys, path.Join(p.Name(), "ci.yaml")) {
			return FormatBundleTree
		}
		sub, err := fs.ReadDir(fsys, p.Name())
		if err != nil {
			continue
		}
		for _, v := range sub {
			if !v.IsDir() {
				continue
			}
			d := path.Join(p.Name(), v.Name())
			if exists(fsys, path.Join(d, "metadata", "annotations.yaml")) || exists(fsys, path.Join(d, "manifests")) ||
				exists(fsys, path.Join(d, "bundle", "metadata", "annotations.yaml")) {
				return FormatBundleTree
			}
		}
	}
	return FormatFBC
}

func loadFBC(ctx context.Context, s Source, sink *problemSink) (*declConfig, error) {
	files, err := fbcFiles(s.FS, sink)
	if err != nil {
		return nil, err
	}
	results := make([]*fbcFile, len(files))
	order := largestFirst(s.FS, files)
	if s.Dir != "" {
		paths := make([]string, len(order))
		for i, o := range order {
			paths[i] = filepath.Join(s.Dir, filepath.FromSlash(files[o]))
		}
		prefetch(paths...)
	}
	if err := forEach(ctx, len(files), func(i int) { results[order[i]] = readFBCFile(s, files[order[i]]) }); err != nil {
		return nil, err
	}
	cfg := &declConfig{}
	for _, r := range results {
		cfg.merge(&r.cfg)
		sink.list = append(sink.list, r.problems.list...)
	}
	return cfg, nil
}

// largestFirst orders the files by size, largest first, so that the worker
// that takes the largest file (a sixth of the community catalog's bytes)
// does not start it when the others are almost done. Results keep the
// files' own order.
func largestFirst(fsys fs.FS, files []string) []int {
	size := make([]int64, len(files))
	order := make([]int, len(files))
	for i, f := range files {
		order[i] = i
		if st, err := fs.Stat(fsys, f); err == nil {
			size[i] = st.Size()
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return size[order[a]] > size[order[b]] })
	return order
}

func readFBCFile(s Source, rel string) *fbcFile {
	var disk *diskFile
	if s.Dir != "" {
		full := filepath.Join(s.Dir, filepath.FromSlash(rel))
		if st, err := os.Stat(full); err == nil {
			disk = &diskFile{path: full, size: st.Size(), modTime: st.ModTime()}
		}
	}
	data, err := fs.ReadFile(s.FS, rel)
	if err != nil {
		f := &fbcFile{}
		f.problems.errorf(rel, "", "cannot read: %v", err)
		return f
	}
	if disk != nil && int64(len(data)) != disk.size {
		disk = nil // changed while reading: keep this file's manifests in memory
	}
	return parseFBCFile(rel, data, disk)
}

// joinSource puts a source's name in front of a path inside it.
func joinSource(name, p string) string {
	if name == "." || name == "" {
		return p
	}
	if p == "" || p == "." || p == "./" {
		return name
	}
	trail := strings.HasSuffix(p, "/")
	out := path.Join(name, p)
	if trail {
		out += "/"
	}
	return out
}

// prefixTree puts the source's name in front of the paths of parsed bundles.
func prefixTree(pkgs []*treePackage, name string) {
	if name == "." || name == "" {
		return
	}
	for _, tp := range pkgs {
		tp.src = joinSource(name, tp.src)
		for _, b := range tp.bundles {
			b.dir = joinSource(name, b.dir)
			b.decl.src = joinSource(name, b.decl.src)
		}
	}
}

// prefix puts the source's name in front of every path.
func prefix(cfg *declConfig, sink *problemSink, name string) {
	if name == "." || name == "" {
		return
	}
	j := func(p string) string { return joinSource(name, p) }
	for _, p := range cfg.packages {
		p.src = j(p.src)
	}
	for _, c := range cfg.channels {
		c.src = j(c.src)
	}
	for _, b := range cfg.bundles {
		b.src = j(b.src)
	}
	for _, d := range cfg.deprecations {
		d.src = j(d.src)
	}
	for i := range cfg.others {
		cfg.others[i].Source = j(cfg.others[i].Source)
	}
	for i := range sink.list {
		sink.list[i].Path = j(sink.list[i].Path)
	}
}
