package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"unique"

	"github.com/blang/semver/v4"
	"sigs.k8s.io/yaml"
)

// Annotation keys of metadata/annotations.yaml.
const (
	annotationPrefix         = "operators.operatorframework.io.bundle."
	AnnotationMediaType      = annotationPrefix + "mediatype.v1"
	AnnotationManifests      = annotationPrefix + "manifests.v1"
	AnnotationMetadata       = annotationPrefix + "metadata.v1"
	AnnotationPackage        = annotationPrefix + "package.v1"
	AnnotationChannels       = annotationPrefix + "channels.v1"
	AnnotationDefaultChannel = annotationPrefix + "channel.default.v1"

	// MediaTypeRegistryV1 is the only bundle media type this loader reads.
	MediaTypeRegistryV1 = "registry+v1"

	csvAnnotationSkipRange  = "olm.skipRange"
	csvAnnotationProperties = "olm.properties"
)

// bundleDir is a parsed registry+v1 bundle directory.
type bundleDir struct {
	decl           *declBundle
	dir            string
	version        semver.Version
	channels       []string
	defaultChannel string
	replaces       string
	skips          []string
	skipRange      string
	description    string
	icon           *Icon
	// owned are the CRDs the CSV lists as owned, as APIs.
	owned []GVK
}

// csvDoc holds the CSV fields the loader reads.
type csvDoc struct {
	Metadata struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Version                   flexString `json:"version"`
		Replaces                  string     `json:"replaces"`
		Skips                     []string   `json:"skips"`
		Description               string     `json:"description"`
		CustomResourceDefinitions struct {
			Owned    []crdDescription `json:"owned"`
			Required []crdDescription `json:"required"`
		} `json:"customresourcedefinitions"`
		RelatedImages []RelatedImage `json:"relatedImages"`
		Icon          []struct {
			Data      string `json:"base64data"`
			MediaType string `json:"mediatype"`
		} `json:"icon"`
	} `json:"spec"`
}

type crdDescription struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

type crdDoc struct {
	Spec struct {
		Group string `json:"group"`
		Names struct {
			Kind string `json:"kind"`
		} `json:"names"`
		Versions []struct {
			Name string `json:"name"`
		} `json:"versions"`
		Version string `json:"version"`
	} `json:"spec"`
}

// bundleFS is the tree bundle directories are read from: fsys, and disk,
// the directory on disk fsys reads, or "" when it is not on disk.
type bundleFS struct {
	fsys fs.FS
	disk string
}

// parseBundleDir reads one registry+v1 bundle. wantPackage, when set, is the
// package the surrounding directory names. It returns nil when the bundle
// cannot be served; the reasons are in sink.
func parseBundleDir(bfs bundleFS, dir, wantPackage string, sink *problemSink) *bundleDir {
	mark := len(sink.list)
	b := parseBundleDirInner(bfs, dir, wantPackage, sink)
	name := ""
	pkg := wantPackage
	if b != nil {
		name, pkg = b.decl.Name, b.decl.Package
	}
	sink.tag(mark, pkg, name)
	for _, p := range sink.list[mark:] {
		if p.Severity == SeverityError {
			return nil
		}
	}
	return b
}

func parseBundleDirInner(bfs bundleFS, dir, wantPackage string, sink *problemSink) *bundleDir {
	fsys := bfs.fsys
	annPath := path.Join(dir, "metadata", "annotations.yaml")
	ann, ok := readAnnotations(fsys, annPath, sink)
	if !ok {
		return nil
	}
	bad := false
	if mt, ok := ann[AnnotationMediaType]; !ok {
		sink.warnf(annPath, AnnotationMediaType, "missing; assuming %s", MediaTypeRegistryV1)
	} else if mt != MediaTypeRegistryV1 {
		sink.errorf(annPath, AnnotationMediaType, "media type %q is not supported (only %s)", mt, MediaTypeRegistryV1)
		return nil
	}
	pkg := strings.TrimSpace(ann[AnnotationPackage])
	switch {
	case pkg == "":
		sink.errorf(annPath, AnnotationPackage, "missing; a bundle must name its package")
		bad = true
	case wantPackage != "" && pkg != wantPackage:
		sink.errorf(annPath, AnnotationPackage, "package %q differs from directory %q", pkg, wantPackage)
		bad = true
	}
	var channels []string
	for _, c := range strings.Split(ann[AnnotationChannels], ",") {
		if c = strings.TrimSpace(c); c != "" {
			channels = append(channels, c)
		}
	}
	if len(channels) == 0 {
		sink.errorf(annPath, AnnotationChannels, "missing; a bundle must belong to at least one channel")
		bad = true
	}
	manifestsDir := path.Join(dir, strings.Trim(orDefault(ann[AnnotationManifests], "manifests/"), "/"))
	manifests, ok := readManifests(bfs, dir, manifestsDir, sink)
	if !ok || bad {
		return nil
	}
	var csvs []int
	for i, m := range manifests {
		if m.m.Kind == KindClusterServiceVersion {
			csvs = append(csvs, i)
		}
	}
	if len(csvs) != 1 {
		names := make([]string, 0, len(csvs))
		for _, i := range csvs {
			names = append(names, path.Base(manifests[i].file))
		}
		sink.errorf(manifestsDir+"/", "", "a bundle needs exactly one ClusterServiceVersion, found %d %v", len(csvs), names)
		return nil
	}
	csvFile := manifests[csvs[0]].file
	var csv csvDoc
	if c := manifests[csvs[0]].csv; c != nil {
		csv = *c
	} else if err := json.Unmarshal(manifests[csvs[0]].m.JSON, &csv); err != nil {
		sink.errorf(csvFile, "", "not a ClusterServiceVersion: %v", err)
		return nil
	}
	if csv.Metadata.Name == "" {
		sink.errorf(csvFile, "metadata.name", "missing")
		return nil
	}
	version, err := ParseVersion(string(csv.Spec.Version))
	if err != nil {
		sink.errorf(csvFile, "spec.version", "%v", err)
		return nil
	}
	if base := path.Base(dir); base != "bundle" && base != string(csv.Spec.Version) && strings.TrimPrefix(base, "v") != string(csv.Spec.Version) && wantPackage != "" {
		sink.warnf(csvFile, "spec.version", "version %s differs from directory %q; the CSV's version is used", csv.Spec.Version, base)
	}
	out := &bundleDir{
		dir: dir, version: version, channels: channels,
		defaultChannel: strings.TrimSpace(ann[AnnotationDefaultChannel]),
		replaces:       csv.Spec.Replaces, skips: csv.Spec.Skips,
		// Every version of a package usually repeats the same description
		// and icon; one copy of each is kept.
		description: unique.Make(csv.Spec.Description).Value(),
	}
	if len(csv.Spec.Icon) > 0 && csv.Spec.Icon[0].Data != "" {
		out.icon = &Icon{Base64Data: unique.Make(csv.Spec.Icon[0].Data).Value(), MediaType: csv.Spec.Icon[0].MediaType}
	}
	if sr, ok := csv.Metadata.Annotations[csvAnnotationSkipRange]; ok {
		_, norm, fixed, err := parseRangeLenient(sr)
		switch {
		case err != nil:
			sink.errorf(csvFile, "metadata.annotations[\"olm.skipRange\"]", "%v", err)
			return nil
		case fixed:
			sink.warnf(csvFile, "metadata.annotations[\"olm.skipRange\"]", "%q has a \"v\" before a version; read as %q", sr, norm)
		}
		out.skipRange = norm
	}

	props := []Property{mustProperty(PropertyPackage, PackageProperty{PackageName: pkg, Version: version.String()})}
	// Provided APIs come from the CRDs the bundle ships.
	shipped := map[string]bool{}
	for _, m := range manifests {
		if m.m.Kind != kindCRD {
			continue
		}
		var crd crdDoc
		if m.crd != nil {
			crd = *m.crd
		} else if err := json.Unmarshal(m.m.JSON, &crd); err != nil {
			sink.errorf(m.file, "spec", "not a CustomResourceDefinition: %v", err)
			return nil
		}
		shipped[m.m.Name] = true
		versions := []string{}
		for _, v := range crd.Spec.Versions {
			versions = append(versions, v.Name)
		}
		if len(versions) == 0 && crd.Spec.Version != "" {
			versions = append(versions, crd.Spec.Version)
		}
		for _, v := range versions {
			props = append(props, mustProperty(PropertyGVK, GVK{Group: crd.Spec.Group, Version: v, Kind: crd.Spec.Names.Kind}))
		}
	}
	for i, o := range csv.Spec.CustomResourceDefinitions.Owned {
		if _, group, ok := strings.Cut(o.Name, "."); ok && o.Version != "" && o.Kind != "" {
			out.owned = append(out.owned, GVK{Group: group, Version: o.Version, Kind: o.Kind})
		}
		if !shipped[o.Name] {
			sink.warnf(csvFile, fmt.Sprintf("spec.customresourcedefinitions.owned[%d]", i), "CRD %q is owned but not shipped in %s", o.Name, manifestsDir)
		}
	}
	for i, r := range csv.Spec.CustomResourceDefinitions.Required {
		group := ""
		if _, g, ok := strings.Cut(r.Name, "."); ok {
			group = g
		}
		if r.Kind == "" || r.Version == "" {
			sink.errorf(csvFile, fmt.Sprintf("spec.customresourcedefinitions.required[%d]", i), "version and kind are required")
			return nil
		}
		props = append(props, mustProperty(PropertyGVKRequired, GVK{Group: group, Version: r.Version, Kind: r.Kind}))
	}
	metaDir := path.Join(dir, strings.Trim(orDefault(ann[AnnotationMetadata], "metadata/"), "/"))
	extra, ok := readMetadataFiles(fsys, metaDir, sink)
	if !ok {
		return nil
	}
	props = append(props, extra...)
	if raw, ok := csv.Metadata.Annotations[csvAnnotationProperties]; ok && strings.TrimSpace(raw) != "" {
		var ps []Property
		if err := json.Unmarshal([]byte(raw), &ps); err != nil {
			sink.errorf(csvFile, "metadata.annotations[\"olm.properties\"]", "not a JSON list of {type, value}: %v", err)
			return nil
		}
		props = append(props, ps...)
	}
	props = dedupeProperties(props)

	var related []RelatedImage
	for i, ri := range csv.Spec.RelatedImages {
		field := fmt.Sprintf("spec.relatedImages[%d]", i)
		switch {
		case strings.TrimSpace(ri.Image) == "":
			sink.warnf(csvFile, field, "image is empty; entry %q ignored", ri.Name)
			continue
		case strings.ContainsAny(ri.Image, " \t\n"):
			sink.warnf(csvFile, field+".image", "%q is not an image reference; entry ignored", ri.Image)
			continue
		case ri.Name == "":
			sink.warnf(csvFile, field+".name", "missing; image %s kept without a name", ri.Image)
		}
		related = append(related, ri)
	}
	mh := newManifestsHash()
	h := sha256.New()
	for _, p := range props {
		fmt.Fprintf(h, "%s\x00%s\x00", p.Type, p.Value)
	}
	for _, m := range manifests {
		mh.add(m.m)
		h.Write(m.m.JSON)
		h.Write([]byte{0})
	}
	out.decl = &declBundle{
		Package: pkg, Name: csv.Metadata.Name, RelatedImages: related, Properties: props,
		manifests: keptManifests(manifests, mh.sum()), src: dir, manifestsDigest: mh.digest(),
	}
	copy(out.decl.sum[:], h.Sum(nil))
	return out
}

// flexString reads a YAML scalar that may have been typed as a number
// (version: 1.1) as its text.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string, got %s", b)
	}
	*f = flexString(n.String())
	return nil
}

func orDefault(s, d string) string {
	if strings.TrimSpace(s) == "" {
		return d
	}
	return s
}

func readAnnotations(fsys fs.FS, p string, sink *problemSink) (map[string]string, bool) {
	data, err := fs.ReadFile(fsys, p)
	if errors.Is(err, fs.ErrNotExist) {
		sink.errorf(p, "", "missing; every registry+v1 bundle needs it")
		return nil, false
	}
	if err != nil {
		sink.errorf(p, "", "cannot read: %v", err)
		return nil, false
	}
	var doc struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		sink.errorf(p, "", "not valid YAML: %v", err)
		return nil, false
	}
	if len(doc.Annotations) == 0 {
		sink.errorf(p, "annotations", "missing or empty")
		return nil, false
	}
	return doc.Annotations, true
}

// fileManifest is one object of a bundle directory, as read at load.
type fileManifest struct {
	file string
	m    Manifest
	// at is where the object's document lies in its file on disk; nil when
	// the tree is not on disk.
	at *dirObject
	// crd and csv hold a CustomResourceDefinition's or a
	// ClusterServiceVersion's fields when they were read while converting;
	// nil means read them from the JSON.
	crd *crdDoc
	csv *csvDoc
}

// keptManifests is what a bundle keeps of its objects: their locations on
// disk when every one has one (the objects are read again on use and must
// hash to sum), else the objects themselves.
func keptManifests(ms []fileManifest, sum [sha256.Size]byte) manifestSource {
	objs := make([]dirObject, 0, len(ms))
	for _, m := range ms {
		if m.at == nil {
			objs = nil
			break
		}
		o := *m.at
		o.apiVersion, o.kind, o.name = m.m.APIVersion, m.m.Kind, m.m.Name
		objs = append(objs, o)
	}
	if objs != nil {
		return &dirManifests{objects: objs, sum: sum}
	}
	inline := make(inlineManifests, 0, len(ms))
	for _, m := range ms {
		inline = append(inline, m.m)
	}
	return inline
}

var manifestExts = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// readManifests reads every object under dir/manifests.
func readManifests(bfs bundleFS, bundleRoot, dir string, sink *problemSink) ([]fileManifest, bool) {
	fsys := bfs.fsys
	entries, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		n := 0
		if root, err := fs.ReadDir(fsys, bundleRoot); err == nil {
			for _, e := range root {
				if !e.IsDir() && manifestExts[strings.ToLower(path.Ext(e.Name()))] {
					n++
				}
			}
		}
		hint := ""
		if n > 0 {
			hint = fmt.Sprintf("; %d manifest files lie at the bundle root, but registry+v1 requires them under %s/", n, path.Base(dir))
		}
		sink.errorf(dir+"/", "", "directory missing%s", hint)
		return nil, false
	}
	if err != nil {
		sink.errorf(dir+"/", "", "cannot read: %v", err)
		return nil, false
	}
	if root, err := fs.ReadDir(fsys, bundleRoot); err == nil {
		var stray []string
		for _, e := range root {
			if !e.IsDir() && manifestExts[strings.ToLower(path.Ext(e.Name()))] {
				stray = append(stray, e.Name())
			}
		}
		if len(stray) > 0 {
			sink.warnf(bundleRoot+"/", "", "%d files outside %s/ are not part of the bundle and were ignored: %s", len(stray), path.Base(dir), strings.Join(stray, ", "))
		}
	}
	var out []fileManifest
	ok := true
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		if e.IsDir() {
			sink.warnf(p+"/", "", "subdirectories of %s/ are not part of a registry+v1 bundle; ignored", path.Base(dir))
			continue
		}
		if !manifestExts[strings.ToLower(path.Ext(e.Name()))] {
			continue
		}
		data, onDisk, err := readManifestFile(bfs, p)
		if err != nil {
			sink.errorf(p, "", "cannot read: %v", err)
			ok = false
			continue
		}
		docs := splitYAML(data)
		n := 0
		for i, d := range docs {
			raw := data[d.off : d.off+d.n]
			if yamlBlank(raw) {
				continue
			}
			field := ""
			if len(docs) > 1 {
				field = fmt.Sprintf("document %d", i+1)
			}
			conv, err := convertManifestYAML(raw)
			var notYAML *notYAMLError
			switch {
			case errors.As(err, &notYAML):
				sink.errorf(p, field, "not valid YAML: %v", notYAML.err)
				ok = false
				continue
			case err != nil:
				sink.errorf(p, field, "%v", err)
				ok = false
				continue
			}
			m := conv.m
			if !checkObjectHead(p, field, m, m.JSON, sink) {
				ok = false
				continue
			}
			n++
			fm := fileManifest{file: p, m: m, crd: conv.crd, csv: conv.csv}
			if onDisk != nil {
				fm.at = &dirObject{file: onDisk, off: int64(d.off), n: int64(d.n)}
			}
			out = append(out, fm)
		}
		if n == 0 && ok {
			sink.warnf(p, "", "holds no objects; ignored")
		}
	}
	if ok && len(out) == 0 {
		sink.errorf(dir+"/", "", "holds no manifests")
		return nil, false
	}
	return out, ok
}

// yamlBlank reports whether a YAML document holds only blank lines and
// comments, without copying it.
func yamlBlank(b []byte) bool {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			return false
		}
	}
	return true
}

// readManifestFile reads a manifest file of a bundle directory. When the
// tree is on disk it also returns the file as it was read, for the bundle
// to read its objects again on use.
func readManifestFile(bfs bundleFS, p string) ([]byte, *dirFile, error) {
	if bfs.disk == "" {
		data, err := fs.ReadFile(bfs.fsys, p)
		return data, nil, err
	}
	full := filepath.Join(bfs.disk, filepath.FromSlash(p))
	data, st, err := readStamped(full, -1)
	if err != nil {
		return nil, nil, err
	}
	return data, &dirFile{path: full, size: st.Size(), modTime: st.ModTime()}, nil
}

// checkObjectHead reports a missing apiVersion, kind or metadata.name, with a
// hint when the key is present with the wrong case.
func checkObjectHead(p, field string, m Manifest, js []byte, sink *problemSink) bool {
	if m.APIVersion != "" && m.Kind != "" && m.Name != "" {
		return true
	}
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(js, &keys)
	prefix := field
	if prefix != "" {
		prefix += " "
	}
	ok := true
	for _, want := range []struct{ key, val string }{{"apiVersion", m.APIVersion}, {"kind", m.Kind}} {
		if want.val != "" {
			continue
		}
		hint := ""
		for k := range keys {
			if strings.EqualFold(k, want.key) && k != want.key {
				hint = fmt.Sprintf(" (found %q; field names are case-sensitive)", k)
			}
		}
		sink.errorf(p, prefix+want.key, "missing%s", hint)
		ok = false
	}
	if ok && m.Name == "" {
		sink.errorf(p, prefix+"metadata.name", "missing")
		ok = false
	}
	return ok
}

// readMetadataFiles reads dependencies.yaml and properties.yaml.
func readMetadataFiles(fsys fs.FS, dir string, sink *problemSink) ([]Property, bool) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		sink.errorf(dir+"/", "", "cannot read: %v", err)
		return nil, false
	}
	var props []Property
	ok := true
	for _, e := range entries {
		name := e.Name()
		p := path.Join(dir, name)
		base := strings.TrimSuffix(strings.TrimSuffix(name, ".yaml"), ".yml")
		switch {
		case e.IsDir() || name == "annotations.yaml":
		case base == "dependencies" && name != base:
			ps, good := readDependencies(fsys, p, sink)
			props = append(props, ps...)
			ok = ok && good
		case base == "properties" && name != base:
			ps, good := readProperties(fsys, p, sink)
			props = append(props, ps...)
			ok = ok && good
		case strings.Contains(strings.ToLower(base), "depend") || strings.Contains(strings.ToLower(base), "propert"):
			sink.errorf(p, "", "unknown metadata file (expected dependencies.yaml or properties.yaml); the bundle is not served because what it declares would be ignored")
			ok = false
		default:
			if manifestExts[strings.ToLower(path.Ext(name))] {
				sink.warnf(p, "", "unknown metadata file; ignored")
			}
		}
	}
	return props, ok
}

// readMetadataDoc reads a metadata file whose only key must be key; misplaced
// names the reason for keys that belong in another file.
func readMetadataDoc(fsys fs.FS, p, key string, misplaced map[string]string, sink *problemSink) (map[string]json.RawMessage, bool) {
	data, err := fs.ReadFile(fsys, p)
	if err != nil {
		sink.errorf(p, "", "cannot read: %v", err)
		return nil, false
	}
	var doc map[string]json.RawMessage
	if err := yaml.Unmarshal(data, &doc); err != nil {
		sink.errorf(p, "", "not valid YAML: %v", err)
		return nil, false
	}
	for k := range doc {
		if why, ok := misplaced[k]; ok {
			sink.errorf(p, k, "%s", why)
			return nil, false
		}
		if k != key {
			sink.errorf(p, k, "unknown key (a %s file holds %q)", key, key+":")
			return nil, false
		}
	}
	return doc, true
}

func readDependencies(fsys fs.FS, p string, sink *problemSink) ([]Property, bool) {
	doc, ok := readMetadataDoc(fsys, p, "dependencies", nil, sink)
	if !ok {
		return nil, false
	}
	var deps []struct {
		Type  string          `json:"type"`
		Value json.RawMessage `json:"value"`
	}
	if raw, ok := doc["dependencies"]; ok {
		if err := json.Unmarshal(raw, &deps); err != nil {
			sink.errorf(p, "dependencies", "not a list of {type, value}: %v", err)
			return nil, false
		}
	}
	var props []Property
	for i, d := range deps {
		field := fmt.Sprintf("dependencies[%d]", i)
		switch d.Type {
		case "olm.package":
			var v struct {
				PackageName string `json:"packageName"`
				Version     string `json:"version"`
			}
			if err := json.Unmarshal(d.Value, &v); err != nil || v.PackageName == "" {
				sink.errorf(p, field+".value", "olm.package needs {packageName, version}")
				return nil, false
			}
			if _, err := parseRange(v.Version); err != nil {
				sink.errorf(p, field+".value.version", "%v", err)
				return nil, false
			}
			props = append(props, mustProperty(PropertyPackageRequired, PackageRequirement{PackageName: v.PackageName, VersionRange: v.Version}))
		case "olm.gvk":
			var g GVK
			if err := json.Unmarshal(d.Value, &g); err != nil || g.Version == "" || g.Kind == "" {
				sink.errorf(p, field+".value", "olm.gvk needs {group, version, kind}")
				return nil, false
			}
			props = append(props, mustProperty(PropertyGVKRequired, g))
		case "olm.label":
			props = append(props, Property{Type: PropertyLabelRequired, Value: d.Value})
		case "olm.constraint":
			props = append(props, Property{Type: PropertyConstraint, Value: d.Value})
		default:
			sink.errorf(p, field+".type", "unknown dependency type %q (expected olm.package, olm.gvk, olm.label or olm.constraint)", d.Type)
			return nil, false
		}
	}
	return props, true
}

func readProperties(fsys fs.FS, p string, sink *problemSink) ([]Property, bool) {
	doc, ok := readMetadataDoc(fsys, p, "properties", map[string]string{
		"dependencies": `dependencies belong in dependencies.yaml; a properties file holds "properties:", so these would be ignored`,
	}, sink)
	if !ok {
		return nil, false
	}
	var props []Property
	if raw, ok := doc["properties"]; ok {
		if err := json.Unmarshal(raw, &props); err != nil {
			sink.errorf(p, "properties", "not a list of {type, value}: %v", err)
			return nil, false
		}
	}
	for i, pr := range props {
		if pr.Type == "" {
			sink.errorf(p, fmt.Sprintf("properties[%d].type", i), "missing")
			return nil, false
		}
	}
	return props, true
}

func mustProperty(typ string, v any) Property {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with plain structs
	}
	return Property{Type: typ, Value: b}
}

// dedupeProperties removes exact duplicates, keeping the first.
func dedupeProperties(ps []Property) []Property {
	seen := map[string]bool{}
	out := ps[:0]
	for _, p := range ps {
		k := p.Type + "\x00" + string(compactJSON(p.Value))
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, p)
	}
	return out
}

func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}
