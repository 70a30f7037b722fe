package catalog

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Update graph modes of a package in a bundle tree, from its ci.yaml.
const (
	updateGraphReplaces = "replaces-mode"
	updateGraphSemver   = "semver-mode"
)

// treePackage is one package of parsed registry+v1 bundles, before it is
// turned into package, channel and bundle documents by addPackage.
type treePackage struct {
	name, src, mode string
	bundles         []*bundleDir
}

// readBundle reads a single bundle directory (the root of fsys). disk, when
// set, is the directory on disk fsys reads: manifests then stay on disk.
func readBundle(fsys fs.FS, disk string, sink *problemSink) []*treePackage {
	b := parseBundleDir(bundleFS{fsys, disk}, ".", "", sink)
	if b == nil {
		return nil
	}
	return []*treePackage{{name: b.decl.Package, mode: updateGraphReplaces, bundles: []*bundleDir{b}}}
}

// readBundleTree reads <package>/<version>/ bundle directories. disk, when
// set, is the directory on disk fsys reads: each bundle's manifests are then
// parsed and checked at load but only their locations and digest are kept,
// so memory does not grow with the manifests' size.
func readBundleTree(fsys fs.FS, disk string, sink *problemSink) []*treePackage {
	pkgs, err := fs.ReadDir(fsys, ".")
	if err != nil {
		sink.errorf(".", "", "cannot read: %v", err)
		return nil
	}
	type job struct {
		pkg, dir string
		nested   bool
	}
	var jobs []job
	modes := map[string]string{}
	for _, p := range pkgs {
		if !p.IsDir() || strings.HasPrefix(p.Name(), ".") {
			continue
		}
		pkg := p.Name()
		modes[pkg] = readUpdateGraph(fsys, pkg, sink)
		versions, err := fs.ReadDir(fsys, pkg)
		if err != nil {
			sink.errorf(pkg+"/", "", "cannot read: %v", err)
			continue
		}
		for _, v := range versions {
			if !v.IsDir() || strings.HasPrefix(v.Name(), ".") {
				continue
			}
			dir := path.Join(pkg, v.Name())
			switch {
			case exists(fsys, path.Join(dir, "metadata")) || exists(fsys, path.Join(dir, "manifests")):
				jobs = append(jobs, job{pkg: pkg, dir: dir})
			case exists(fsys, path.Join(dir, "bundle", "metadata", "annotations.yaml")):
				jobs = append(jobs, job{pkg: pkg, dir: path.Join(dir, "bundle"), nested: true})
			default:
				sink.warnf(dir+"/", "", "not a bundle directory (no metadata/ or manifests/); ignored")
			}
		}
	}
	// Bundles parse independently; results are merged in directory order.
	// On disk, the kernel reads the bundle readAheadBundles ahead of the
	// one a worker starts, so that a cold tree is read while it is parsed.
	results := make([]*bundleDir, len(jobs))
	sinks := make([]problemSink, len(jobs))
	if disk != "" {
		for i := 0; i < min(readAheadBundles, len(jobs)); i++ {
			prefetchTree(filepath.Join(disk, filepath.FromSlash(jobs[i].dir)))
		}
	}
	_ = forEach(context.Background(), len(jobs), func(i int) {
		j := jobs[i]
		if next := i + readAheadBundles; disk != "" && next < len(jobs) {
			prefetchTree(filepath.Join(disk, filepath.FromSlash(jobs[next].dir)))
		}
		if j.nested {
			sinks[i].warnf(path.Dir(j.dir)+"/", "", "bundle found one level down in bundle/; loaded from there")
		}
		results[i] = parseBundleDir(bundleFS{fsys, disk}, j.dir, j.pkg, &sinks[i])
	})
	byPkg := map[string][]*bundleDir{}
	var order []string
	for i, j := range jobs {
		sink.list = append(sink.list, sinks[i].list...)
		if results[i] == nil {
			continue
		}
		if _, ok := byPkg[j.pkg]; !ok {
			order = append(order, j.pkg)
		}
		byPkg[j.pkg] = append(byPkg[j.pkg], results[i])
	}
	out := make([]*treePackage, 0, len(order))
	for _, pkg := range order {
		out = append(out, &treePackage{name: pkg, src: pkg + "/", mode: modes[pkg], bundles: byPkg[pkg]})
	}
	return out
}

// readAheadBundles is how many bundle directories ahead of the workers the
// kernel is asked to read (the community repository's average about
// 380 KB each: a few MB in flight, not the tree).
const readAheadBundles = 16

// emitPackages turns parsed packages into documents.
func emitPackages(pkgs []*treePackage, sink *problemSink) *declConfig {
	cfg := &declConfig{}
	for _, tp := range pkgs {
		addPackage(cfg, tp.name, tp.src, tp.mode, tp.bundles, sink)
	}
	return cfg
}

func exists(fsys fs.FS, p string) bool {
	_, err := fs.Stat(fsys, p)
	return err == nil
}

// readUpdateGraph reads updateGraph from a package's ci.yaml, as the
// OperatorHub repositories keep it.
func readUpdateGraph(fsys fs.FS, pkg string, sink *problemSink) string {
	p := path.Join(pkg, "ci.yaml")
	data, err := fs.ReadFile(fsys, p)
	if errors.Is(err, fs.ErrNotExist) {
		return updateGraphReplaces
	}
	if err != nil {
		sink.warnf(p, "", "cannot read: %v; using %s", err, updateGraphReplaces)
		return updateGraphReplaces
	}
	var ci struct {
		UpdateGraph string `json:"updateGraph"`
	}
	if err := yaml.Unmarshal(data, &ci); err != nil {
		sink.warnf(p, "", "not valid YAML: %v; using %s", err, updateGraphReplaces)
		return updateGraphReplaces
	}
	switch ci.UpdateGraph {
	case "", updateGraphReplaces:
		return updateGraphReplaces
	case updateGraphSemver:
		return updateGraphSemver
	default:
		sink.warnf(p, "updateGraph", "unknown mode %q; using %s", ci.UpdateGraph, updateGraphReplaces)
		return updateGraphReplaces
	}
}

// addPackage turns the parsed bundles of one package into package, channel
// and bundle documents. In replaces-mode the CSVs' replaces make the edges;
// in semver-mode each channel entry replaces the next lower version in that
// channel. Skips and skipRange apply in both.
func addPackage(cfg *declConfig, pkg, src, mode string, bundles []*bundleDir, sink *problemSink) {
	sort.SliceStable(bundles, func(i, j int) bool { return bundles[i].version.LT(bundles[j].version) })
	seen := map[string]*bundleDir{}
	kept := bundles[:0:0]
	for _, b := range bundles {
		if prev := seen[b.decl.Name]; prev != nil {
			sink.errorf(b.dir+"/", "", "bundle %q is also defined in %s/ of the same package; this copy is not served", b.decl.Name, strings.TrimPrefix(prev.dir, src))
			continue
		}
		seen[b.decl.Name] = b
		kept = append(kept, b)
	}
	if len(kept) == 0 {
		return
	}
	latest := kept[len(kept)-1]
	channels := map[string][]*bundleDir{}
	for _, b := range kept {
		for _, c := range b.channels {
			channels[c] = append(channels[c], b)
		}
	}
	names := make([]string, 0, len(channels))
	for c := range channels {
		names = append(names, c)
	}
	sort.Strings(names)
	def := latest.defaultChannel
	switch {
	case def != "" && channels[def] != nil:
	case len(names) == 1:
		def = names[0]
	default:
		reason := "is not set"
		if def != "" {
			reason = "names channel " + quote(def) + ", which no bundle is in"
		}
		def = latest.channels[0]
		sink.warnf(path.Join(latest.dir, "metadata", "annotations.yaml"), AnnotationDefaultChannel,
			"the default channel of the latest version %s; using %q, its first channel", reason, def)
	}
	cfg.packages = append(cfg.packages, &declPackage{Name: pkg, DefaultChannel: def, Description: latest.description, Icon: latest.icon, src: src})
	for _, name := range names {
		members := channels[name]
		ch := &declChannel{Package: pkg, Name: name, src: src}
		for i, b := range members {
			e := ChannelEntry{Name: b.decl.Name, Skips: b.skips, SkipRange: b.skipRange}
			if mode == updateGraphSemver {
				if i > 0 {
					e.Replaces = members[i-1].decl.Name
				}
			} else {
				e.Replaces = b.replaces
			}
			ch.Entries = append(ch.Entries, e)
		}
		cfg.channels = append(cfg.channels, ch)
	}
	for _, b := range kept {
		cfg.bundles = append(cfg.bundles, b.decl)
	}
}

func quote(s string) string { return `"` + s + `"` }
