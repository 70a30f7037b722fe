package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
)

// The bundle-tree layout writes the same packages as registry+v1 bundle
// directories, as the community-operators repository keeps them:
// <package>/ci.yaml and <package>/<version>/{manifests,metadata}/, every
// object a YAML file of its own. Every bundle gets a CSV and its CRDs (one
// per olm.gvk), plus the other objects of the real bundle; objects are
// nested YAML like real CRD schemas and CSV deployments (mappings of
// fields with a type and a one-line description), not one long string, so
// that parsing costs what real manifests cost. Object sizes are the real
// ones scaled so that the tree holds about -tree-bytes of YAML; bundles
// the real catalog lists without objects get the mean size of their
// package's objects (or of all objects). Packages use semver-mode, so
// every channel is one chain by version whatever the real graph was;
// skips and skipRange are kept.

// fullTreeBytes is the size of the community-operators repository's bundle
// directories: 7,018 bundles, about 2.4 GB of YAML.
const fullTreeBytes = 2_400_000_000

// genTree writes the bundle-tree layout of the given scale into dir.
func genTree(templates []tPackage, scale int, seed int64, totalBytes int64, dir string) error {
	rng := rand.New(rand.NewSource(seed))
	var all, withObjects, objects int64
	for _, t := range templates {
		for _, b := range t.Bundles {
			all++
			if len(b.Objects) > 0 {
				withObjects++
			}
			for _, o := range b.Objects {
				objects += int64(o.Size)
			}
		}
	}
	if withObjects == 0 || objects == 0 {
		return fmt.Errorf("the real catalog has no bundle objects to take sizes from")
	}
	// Bundles without objects get the mean bundle's bytes; the factor makes
	// the whole tree about totalBytes.
	meanBundle := objects / withObjects
	factor := float64(totalBytes) / float64(int64(scale)*(objects+(all-withObjects)*meanBundle))
	for c := 0; c < scale; c++ {
		for i, t := range templates {
			if err := genTreePackage(rng, t, synthName(c, i), meanBundle, factor, dir); err != nil {
				return err
			}
		}
	}
	return nil
}

func genTreePackage(rng *rand.Rand, t tPackage, name string, meanBundle int64, factor float64, dir string) error {
	pdir := filepath.Join(dir, name)
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pdir, "ci.yaml"), []byte("updateGraph: semver-mode\n"), 0o644); err != nil {
		return err
	}
	bname := func(i int) string { return fmt.Sprintf("%s.b%04d", name, i) }
	type membership struct {
		channels  []string
		skips     []string
		skipRange string
	}
	member := make([]membership, len(t.Bundles))
	for _, ch := range t.Channels {
		for _, e := range ch.Entries {
			m := &member[e.Name]
			m.channels = append(m.channels, ch.Name)
			if m.skipRange == "" {
				m.skipRange = e.SkipRange
			}
			if len(m.skips) == 0 {
				for _, s := range e.Skips {
					if s >= 0 {
						m.skips = append(m.skips, bname(s))
					} else {
						m.skips = append(m.skips, name+".gone")
					}
				}
			}
		}
	}
	var icon string
	if t.IconLen > 0 {
		raw := make([]byte, t.IconLen*3/4)
		rng.Read(raw)
		icon = base64.StdEncoding.EncodeToString(raw)
	}
	group := name + ".example.com"
	dirs := map[string]bool{}
	for i, b := range t.Bundles {
		m := member[i]
		if len(m.channels) == 0 {
			continue // in no channel: not a bundle of the repository
		}
		version := b.Version
		if version == "" || dirs[version] {
			version = fmt.Sprintf("0.0.%d-synth%d", i, i)
		}
		dirs[version] = true
		bdir := filepath.Join(pdir, version)
		objs := b.Objects
		if len(objs) == 0 {
			objs = []tObject{{Kind: "ClusterServiceVersion", Size: int(meanBundle) / 2}}
			for g := 0; g < max(1, b.GVKs); g++ {
				objs = append(objs, tObject{Kind: "CustomResourceDefinition", Size: int(meanBundle) / 2 / max(1, b.GVKs)})
			}
		}
		var csvSize int
		var crds, others []tObject
		for _, o := range objs {
			switch o.Kind {
			case "ClusterServiceVersion":
				csvSize += o.Size
			case "CustomResourceDefinition":
				crds = append(crds, o)
			default:
				others = append(others, o)
			}
		}
		// One CRD per olm.gvk, so the bundle provides what the real one does.
		for len(crds) < b.GVKs {
			crds = append(crds, tObject{Kind: "CustomResourceDefinition", Size: 2000})
		}
		scaled := func(n int) int { return max(200, int(float64(n)*factor)) }
		files := map[string]string{}
		var owned strings.Builder
		for g, o := range crds {
			kind := fmt.Sprintf("Kind%d", g)
			plural := strings.ToLower(kind) + "s"
			crdName := plural + "." + group
			fmt.Fprintf(&owned, "    - name: %s\n      version: v1\n      kind: %s\n      displayName: %s\n", crdName, kind, kind)
			var y strings.Builder
			fmt.Fprintf(&y, "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: %s\nspec:\n  group: %s\n  names:\n    kind: %s\n    listKind: %sList\n    plural: %s\n    singular: %s\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n",
				crdName, group, kind, kind, plural, strings.ToLower(kind))
			schemaFill(rng, &y, "        ", scaled(o.Size)-y.Len())
			files[fmt.Sprintf("manifests/%s.yaml", crdName)] = y.String()
		}
		for j, o := range others {
			var y strings.Builder
			fmt.Fprintf(&y, "apiVersion: %s\nkind: %s\nmetadata:\n  name: %s-%d\n  labels:\n    app: %s\n", apiVersionOf(o.Kind), o.Kind, bname(i), j, name)
			y.WriteString("data:\n")
			schemaFill(rng, &y, "  ", scaled(o.Size)-y.Len())
			files[fmt.Sprintf("manifests/%s-%d.%s.yaml", bname(i), j, strings.ToLower(o.Kind))] = y.String()
		}
		var csv strings.Builder
		fmt.Fprintf(&csv, "apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: %s\n  annotations:\n    capabilities: Basic Install\n", bname(i))
		if m.skipRange != "" {
			fmt.Fprintf(&csv, "    olm.skipRange: '%s'\n", m.skipRange)
		}
		fmt.Fprintf(&csv, "spec:\n  displayName: %s\n  version: %s\n", name, version)
		if t.DescLen > 0 {
			fmt.Fprintf(&csv, "  description: %s\n", strings.TrimSpace(randText(rng, t.DescLen)))
		}
		if icon != "" {
			fmt.Fprintf(&csv, "  icon:\n  - base64data: %s\n    mediatype: %s\n", icon, t.IconType)
		}
		if len(m.skips) > 0 {
			csv.WriteString("  skips:\n")
			for _, s := range m.skips {
				fmt.Fprintf(&csv, "  - %s\n", s)
			}
		}
		if b.RelatedImages > 0 {
			csv.WriteString("  relatedImages:\n")
			for j := 0; j < b.RelatedImages; j++ {
				fmt.Fprintf(&csv, "  - name: image%d\n    image: registry.example.com/synthetic/%s-%d:%s\n", j, name, j, version)
			}
		}
		fmt.Fprintf(&csv, "  customresourcedefinitions:\n    owned:\n%s", owned.String())
		csv.WriteString("  install:\n    strategy: deployment\n    spec:\n      deployments:\n      - name: controller\n        spec:\n")
		schemaFill(rng, &csv, "          ", scaled(csvSize)-csv.Len())
		files[fmt.Sprintf("manifests/%s.clusterserviceversion.yaml", name)] = csv.String()

		var ann strings.Builder
		fmt.Fprintf(&ann, "annotations:\n  operators.operatorframework.io.bundle.channel.default.v1: %s\n  operators.operatorframework.io.bundle.channels.v1: %s\n  operators.operatorframework.io.bundle.manifests.v1: manifests/\n  operators.operatorframework.io.bundle.mediatype.v1: registry+v1\n  operators.operatorframework.io.bundle.metadata.v1: metadata/\n  operators.operatorframework.io.bundle.package.v1: %s\n",
			t.DefaultChannel, strings.Join(m.channels, ","), name)
		files["metadata/annotations.yaml"] = ann.String()
		for p, content := range files {
			full := filepath.Join(bdir, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// schemaFill writes about n bytes of nested YAML mappings at indent, shaped
// like an OpenAPI schema: properties with a type and a description, nested
// a few levels deep.
func schemaFill(rng *rand.Rand, w *strings.Builder, indent string, n int) {
	end := w.Len() + max(0, n)
	field := 0
	var level func(ind string, depth int)
	level = func(ind string, depth int) {
		fmt.Fprintf(w, "%sproperties:\n", ind)
		for k := 0; k < 8 && w.Len() < end; k++ {
			field++
			fmt.Fprintf(w, "%s  field%d:\n", ind, field)
			if depth < 3 && rng.Intn(3) == 0 {
				fmt.Fprintf(w, "%s    type: object\n%s    description: %s\n", ind, ind, strings.TrimSpace(randText(rng, 40+rng.Intn(80))))
				level(ind+"    ", depth+1)
				continue
			}
			fmt.Fprintf(w, "%s    type: string\n%s    description: %s\n", ind, ind, strings.TrimSpace(randText(rng, 40+rng.Intn(120))))
		}
	}
	level(indent, 0)
	for w.Len() < end {
		// Further groups are siblings under keys of their own.
		field++
		fmt.Fprintf(w, "%sx-group%d:\n", indent, field)
		level(indent+"  ", 1)
	}
}

// ensureTree generates the bundle-tree layout once into cache.
func ensureTree(ctx context.Context, realDir, cache string, scale int, seed, totalBytes int64) (string, error) {
	dest := filepath.Join(cache, fmt.Sprintf("%s-tree-%dx-%dMB-seed%d", genVersion, scale, totalBytes/1_000_000, seed))
	if _, err := os.Stat(filepath.Join(dest, ".generated")); err == nil {
		return dest, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	logf("generating the %d× synthetic bundle tree (%d MB) into %s (once)", scale, totalBytes/1_000_000, dest)
	templates, err := profileCatalog(realDir)
	if err != nil {
		return "", err
	}
	part := dest + ".part"
	_ = os.RemoveAll(part)
	if err := genTree(templates, scale, seed, totalBytes, part); err != nil {
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
