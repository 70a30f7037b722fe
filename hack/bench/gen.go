package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// The synthetic generator takes the shape of the real catalog and fills it
// with generated content: scale N writes N packages for every real package,
// each with the same number of bundles and channels, the same channel graph
// (replaces, skips, skipRange), the same property mix (olm.gvk count,
// olm.package.required, olm.gvk.required, other properties), the same
// relatedImages count, icon and description sizes, and olm.bundle.object
// manifests of the same kinds and decoded sizes on the same bundles. Names,
// APIs, images and manifest bodies are generated. So N× has exactly N times
// the packages, channels and bundles of the real catalog and a manifest size
// distribution sampled from it. Files keep the real file's format (JSON or
// YAML).

type tObject struct {
	Kind string
	Size int
}

type tBundle struct {
	Name          string
	Version       string
	GVKs          int
	GVKRequired   int
	PkgRequired   int
	Other         []json.RawMessage // other properties, copied as they are
	RelatedImages int
	Objects       []tObject
	CSVMetadata   int // size of olm.csv.metadata, if any
}

type tEntry struct {
	Name      int
	Replaces  int // -1: none; -2: a name that is no bundle of the package
	Skips     []int
	SkipRange string
}

type tChannel struct {
	Name    string
	Entries []tEntry
}

type tPackage struct {
	Name           string
	YAML           bool
	DescLen        int
	IconLen        int
	IconType       string
	DefaultChannel string
	Channels       []tChannel
	Bundles        []tBundle
	Others         int // documents of other schemas (not generated; counted)
}

type rawDoc struct {
	Schema         string                                  `json:"schema"`
	Name           string                                  `json:"name"`
	Package        string                                  `json:"package"`
	DefaultChannel string                                  `json:"defaultChannel"`
	Description    string                                  `json:"description"`
	Icon           *struct{ Base64data, Mediatype string } `json:"icon"`
	Entries        []struct {
		Name      string   `json:"name"`
		Replaces  string   `json:"replaces"`
		Skips     []string `json:"skips"`
		SkipRange string   `json:"skipRange"`
	} `json:"entries"`
	Properties []struct {
		Type  string          `json:"type"`
		Value json.RawMessage `json:"value"`
	} `json:"properties"`
	RelatedImages []json.RawMessage `json:"relatedImages"`
}

// profileCatalog reads the real catalog's shape, one template per file
// (the real catalog has one package per directory).
func profileCatalog(root string) ([]tPackage, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".json", ".yaml", ".yml":
			if !d.IsDir() {
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []tPackage
	for _, f := range files {
		docs, isYAML, err := readDocs(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		t := tPackage{YAML: isYAML}
		bundleIdx := map[string]int{}
		for _, d := range docs {
			if d.Schema == "olm.bundle" {
				bundleIdx[d.Name] = len(t.Bundles)
				t.Bundles = append(t.Bundles, profileBundle(d))
			}
		}
		for _, d := range docs {
			switch d.Schema {
			case "olm.package":
				t.Name, t.DefaultChannel, t.DescLen = d.Name, d.DefaultChannel, len(d.Description)
				if d.Icon != nil {
					t.IconLen, t.IconType = len(d.Icon.Base64data), d.Icon.Mediatype
				}
			case "olm.channel":
				ch := tChannel{Name: d.Name}
				idx := func(n string) int {
					if n == "" {
						return -1
					}
					if i, ok := bundleIdx[n]; ok {
						return i
					}
					return -2
				}
				for _, e := range d.Entries {
					te := tEntry{Name: idx(e.Name), Replaces: idx(e.Replaces), SkipRange: e.SkipRange}
					for _, s := range e.Skips {
						te.Skips = append(te.Skips, idx(s))
					}
					if te.Name >= 0 {
						ch.Entries = append(ch.Entries, te)
					}
				}
				t.Channels = append(t.Channels, ch)
			case "olm.bundle":
			default:
				t.Others++
			}
		}
		if t.Name != "" {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no olm.package in %s", root)
	}
	return out, nil
}

func profileBundle(d rawDoc) tBundle {
	b := tBundle{Name: d.Name, RelatedImages: len(d.RelatedImages)}
	for _, p := range d.Properties {
		switch p.Type {
		case "olm.gvk":
			b.GVKs++
		case "olm.gvk.required":
			b.GVKRequired++
		case "olm.package.required":
			b.PkgRequired++
		case "olm.package":
			var v struct {
				Version string `json:"version"`
			}
			_ = json.Unmarshal(p.Value, &v)
			b.Version = v.Version
		case "olm.bundle.object":
			var v struct {
				Data string `json:"data"`
			}
			_ = json.Unmarshal(p.Value, &v)
			raw, _ := base64.StdEncoding.DecodeString(v.Data)
			var head struct {
				Kind string `json:"kind"`
			}
			if json.Unmarshal(raw, &head) != nil {
				if j, err := yaml.YAMLToJSON(raw); err == nil {
					_ = json.Unmarshal(j, &head)
				}
			}
			if head.Kind == "" {
				head.Kind = "ConfigMap"
			}
			b.Objects = append(b.Objects, tObject{Kind: head.Kind, Size: len(raw)})
		case "olm.csv.metadata":
			b.CSVMetadata = len(p.Value)
		default:
			b.Other = append(b.Other, mustJSON(map[string]any{"type": p.Type, "value": p.Value}))
		}
	}
	return b
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// readDocs reads a JSON stream or a YAML stream.
func readDocs(path string) ([]rawDoc, bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	var out []rawDoc
	if strings.ToLower(filepath.Ext(path)) == ".json" {
		dec := json.NewDecoder(bytes.NewReader(data))
		for i := 0; i < 1_000_000; i++ {
			var d rawDoc
			err := dec.Decode(&d)
			if errors.Is(err, io.EOF) {
				return out, false, nil
			}
			if err != nil {
				return nil, false, err
			}
			out = append(out, d)
		}
		return nil, false, fmt.Errorf("too many documents")
	}
	for _, part := range splitYAMLDocs(data) {
		j, err := yaml.YAMLToJSON(part)
		if err != nil {
			return nil, true, err
		}
		if len(bytes.TrimSpace(j)) == 0 || string(bytes.TrimSpace(j)) == "null" {
			continue
		}
		var d rawDoc
		if err := json.Unmarshal(j, &d); err != nil {
			return nil, true, err
		}
		out = append(out, d)
	}
	return out, true, nil
}

func splitYAMLDocs(data []byte) [][]byte {
	var out [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Equal(bytes.TrimRight(line, " \t\r"), []byte("---")) {
			out = append(out, append([]byte(nil), cur.Bytes()...))
			cur.Reset()
			continue
		}
		cur.Write(line)
		cur.WriteByte('\n')
	}
	out = append(out, cur.Bytes())
	return out
}

// gen writes the synthetic catalog of the given scale into dir.
func gen(templates []tPackage, scale int, seed int64, dir string) error {
	rng := rand.New(rand.NewSource(seed))
	type pkgRef struct {
		name string
		gvks int
	}
	var all []pkgRef
	for c := 0; c < scale; c++ {
		for i, t := range templates {
			maxG := 0
			for _, b := range t.Bundles {
				maxG = max(maxG, b.GVKs)
			}
			all = append(all, pkgRef{name: synthName(c, i), gvks: maxG})
		}
	}
	for c := 0; c < scale; c++ {
		for i, t := range templates {
			name := synthName(c, i)
			docs := genPackage(rng, t, name, all[rng.Intn(len(all))].name, func() (string, string) {
				o := all[rng.Intn(len(all))]
				return o.name, fmt.Sprintf("Kind%d", rng.Intn(max(1, o.gvks)))
			})
			pdir := filepath.Join(dir, name)
			if err := os.MkdirAll(pdir, 0o755); err != nil {
				return err
			}
			if err := writeDocs(pdir, t.YAML, docs); err != nil {
				return err
			}
		}
	}
	return nil
}

func synthName(copy, i int) string { return fmt.Sprintf("synth-%d-op%03d", copy, i) }

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "

func randText(rng *rand.Rand, n int) string {
	b := make([]byte, max(0, n))
	for i := range b {
		b[i] = letters[rng.Intn(len(letters))]
	}
	return string(b)
}

func apiVersionOf(kind string) string {
	switch kind {
	case "ClusterServiceVersion":
		return "operators.coreos.com/v1alpha1"
	case "CustomResourceDefinition":
		return "apiextensions.k8s.io/v1"
	case "ClusterRole", "Role", "RoleBinding", "ClusterRoleBinding":
		return "rbac.authorization.k8s.io/v1"
	case "ServiceMonitor", "PrometheusRule":
		return "monitoring.coreos.com/v1"
	default:
		return "v1"
	}
}

// manifest is a generated object of exactly size bytes of JSON (or a little
// more when size is tiny).
func manifest(rng *rand.Rand, kind, name string, size int) []byte {
	head := fmt.Sprintf(`{"apiVersion":%q,"kind":%q,"metadata":{"name":%q,"labels":{"app":%q}},"spec":{"description":"`,
		apiVersionOf(kind), kind, name, name)
	tail := `"}}`
	pad := size - len(head) - len(tail)
	return []byte(head + randText(rng, pad) + tail)
}

func genPackage(rng *rand.Rand, t tPackage, name, otherPkg string, otherGVK func() (string, string)) []any {
	var docs []any
	pkg := map[string]any{"schema": "olm.package", "name": name, "defaultChannel": t.DefaultChannel}
	if t.DescLen > 0 {
		pkg["description"] = randText(rng, t.DescLen)
	}
	if t.IconLen > 0 {
		raw := make([]byte, t.IconLen*3/4)
		rng.Read(raw)
		pkg["icon"] = map[string]string{"base64data": base64.StdEncoding.EncodeToString(raw), "mediatype": t.IconType}
	}
	docs = append(docs, pkg)
	bname := func(i int) string { return fmt.Sprintf("%s.b%04d", name, i) }
	for _, ch := range t.Channels {
		var entries []map[string]any
		for _, e := range ch.Entries {
			m := map[string]any{"name": bname(e.Name)}
			switch {
			case e.Replaces >= 0:
				m["replaces"] = bname(e.Replaces)
			case e.Replaces == -2:
				m["replaces"] = name + ".gone"
			}
			var skips []string
			for _, s := range e.Skips {
				if s >= 0 {
					skips = append(skips, bname(s))
				} else {
					skips = append(skips, name+".gone")
				}
			}
			if len(skips) > 0 {
				m["skips"] = skips
			}
			if e.SkipRange != "" {
				m["skipRange"] = e.SkipRange
			}
			entries = append(entries, m)
		}
		docs = append(docs, map[string]any{"schema": "olm.channel", "package": name, "name": ch.Name, "entries": entries})
	}
	group := name + ".example.com"
	for i, b := range t.Bundles {
		bn := bname(i)
		var props []any
		for g := 0; g < b.GVKs; g++ {
			props = append(props, map[string]any{"type": "olm.gvk", "value": map[string]string{"group": group, "version": "v1", "kind": fmt.Sprintf("Kind%d", g)}})
		}
		props = append(props, map[string]any{"type": "olm.package", "value": map[string]string{"packageName": name, "version": b.Version}})
		for g := 0; g < b.GVKRequired; g++ {
			p, k := otherGVK()
			props = append(props, map[string]any{"type": "olm.gvk.required", "value": map[string]string{"group": p + ".example.com", "version": "v1", "kind": k}})
		}
		for g := 0; g < b.PkgRequired; g++ {
			props = append(props, map[string]any{"type": "olm.package.required", "value": map[string]string{"packageName": otherPkg, "versionRange": ">=0.0.0"}})
		}
		for _, o := range b.Other {
			props = append(props, o)
		}
		if b.CSVMetadata > 0 {
			props = append(props, map[string]any{"type": "olm.csv.metadata", "value": map[string]string{"description": randText(rng, b.CSVMetadata)}})
		}
		for j, o := range b.Objects {
			raw := manifest(rng, o.Kind, fmt.Sprintf("%s-%d", bn, j), o.Size)
			props = append(props, map[string]any{"type": "olm.bundle.object", "value": map[string]string{"data": base64.StdEncoding.EncodeToString(raw)}})
		}
		image := fmt.Sprintf("registry.example.com/synthetic/%s:%s", name, b.Version)
		var related []map[string]string
		for j := 0; j < b.RelatedImages; j++ {
			img := image
			if j > 0 {
				img = fmt.Sprintf("registry.example.com/synthetic/%s-operand%d:%s", name, j, b.Version)
			}
			related = append(related, map[string]string{"name": "", "image": img})
		}
		doc := map[string]any{"schema": "olm.bundle", "name": bn, "package": name, "image": image, "properties": props}
		if len(related) > 0 {
			doc["relatedImages"] = related
		}
		docs = append(docs, doc)
	}
	return docs
}

func writeDocs(dir string, isYAML bool, docs []any) error {
	name := "catalog.json"
	if isYAML {
		name = "catalog.yaml"
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i, d := range docs {
		if isYAML {
			y, err := yaml.Marshal(d)
			if err != nil {
				f.Close()
				return err
			}
			if i > 0 {
				w.WriteString("---\n")
			}
			w.Write(y)
			continue
		}
		j, err := json.MarshalIndent(d, "", "    ")
		if err != nil {
			f.Close()
			return err
		}
		w.Write(j)
		w.WriteString("\n")
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ensureSynthetic generates the scale once into cache/scale-N-seed-S/.
func ensureSynthetic(ctx context.Context, realDir, cache string, scale int, seed int64) (string, error) {
	dest := filepath.Join(cache, fmt.Sprintf("%s-%dx-seed%d", genVersion, scale, seed))
	if _, err := os.Stat(filepath.Join(dest, ".generated")); err == nil {
		return dest, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	logf("generating the %d× synthetic catalog into %s (once)", scale, dest)
	templates, err := profileCatalog(realDir)
	if err != nil {
		return "", err
	}
	part := dest + ".part"
	_ = os.RemoveAll(part)
	if err := gen(templates, scale, seed, part); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(part, ".generated"), []byte(realDir+"\n"), 0o644); err != nil {
		return "", err
	}
	_ = os.RemoveAll(dest)
	if err := os.Rename(part, dest); err != nil {
		return "", err
	}
	return dest, nil
}

// genVersion names the generator's output format; bump it when gen changes.
const genVersion = "g1"

func genMain(args []string) int {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	corpus := fs.String("corpus", defaultCorpus(), "the real catalog tarball to take the shape from")
	cache := fs.String("cache", defaultCache(), "cache directory")
	scale := fs.Int("scale", 1, "how many times the real catalog's size")
	seed := fs.Int64("seed", 1, "random seed")
	out := fs.String("out", "", "write here instead of the cache")
	layout := fs.String("layout", "fbc", "fbc: a file-based catalog; bundle-tree: registry+v1 bundle directories <package>/<version>/ as the community-operators repository keeps them")
	treeBytes := fs.Int64("tree-bytes", fullTreeBytes, "for -layout bundle-tree: about how many bytes of YAML to write (default: the community-operators repository's)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *layout != "fbc" && *layout != "bundle-tree" {
		fmt.Fprintf(os.Stderr, "gen: -layout must be fbc or bundle-tree, not %q\n", *layout)
		return 2
	}
	if *treeBytes < 1_000_000 {
		fmt.Fprintln(os.Stderr, "gen: -tree-bytes must be at least 1000000")
		return 2
	}
	if *scale < 1 || *scale > 16 {
		fmt.Fprintln(os.Stderr, "gen: -scale must be 1..16")
		return 2
	}
	ctx := context.Background()
	realDir, err := extractCorpus(ctx, *corpus, filepath.Join(*cache, "corpus"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		return 1
	}
	tree := *layout == "bundle-tree"
	if *out == "" {
		var dir string
		if tree {
			dir, err = ensureTree(ctx, realDir, filepath.Join(*cache, "synthetic"), *scale, *seed, *treeBytes)
		} else {
			dir, err = ensureSynthetic(ctx, realDir, filepath.Join(*cache, "synthetic"), *scale, *seed)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			return 1
		}
		fmt.Println(dir)
		return 0
	}
	templates, err := profileCatalog(realDir)
	switch {
	case err != nil:
	case tree:
		err = genTree(templates, *scale, *seed, *treeBytes, *out)
	default:
		err = gen(templates, *scale, *seed, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		return 1
	}
	fmt.Println(*out)
	return 0
}
