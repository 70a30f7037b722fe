package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/yaml"
)

// epoch is the time of every file and of the config of a built image, so
// that the same content always makes the same digest.
var epoch = time.Unix(0, 0).UTC()

// BuildCatalogImage makes a catalog image: one layer holding the file-based
// catalog in fsys under /configs, and the configs label, as opm generates.
func BuildCatalogImage(fsys fs.FS) (v1.Image, error) {
	return buildImage(map[string]fs.FS{"configs": fsys}, map[string]string{LabelConfigs: DefaultConfigsDir})
}

// BuildBundleImage makes a registry+v1 bundle image as opm and
// operator-sdk do: one layer with /manifests and /metadata from fsys, and
// the operators.operatorframework.io.bundle.* annotations of
// metadata/annotations.yaml as labels.
func BuildBundleImage(fsys fs.FS) (v1.Image, error) {
	var errs []error
	for _, d := range []string{"manifests", "metadata"} {
		if st, err := fs.Stat(fsys, d); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("bundle image: no %s/ directory", d))
		}
	}
	labels, err := bundleLabels(fsys)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	manifests, _ := fs.Sub(fsys, "manifests")
	metadata, _ := fs.Sub(fsys, "metadata")
	return buildImage(map[string]fs.FS{"manifests": manifests, "metadata": metadata}, labels)
}

// bundleLabels reads the bundle annotations, which become the image's labels.
func bundleLabels(fsys fs.FS) (map[string]string, error) {
	data, err := fs.ReadFile(fsys, "metadata/annotations.yaml")
	if err != nil {
		return nil, fmt.Errorf("bundle image: %w", err)
	}
	var doc struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("bundle image: metadata/annotations.yaml: %w", err)
	}
	labels := map[string]string{}
	for k, v := range doc.Annotations {
		if strings.HasPrefix(k, LabelBundlePrefix) {
			labels[k] = v
		}
	}
	var errs []error
	for _, k := range []string{LabelMediaType, LabelPackage, LabelChannels} {
		if labels[k] == "" {
			errs = append(errs, fmt.Errorf("bundle image: metadata/annotations.yaml: %s is not set", k))
		}
	}
	if mt := labels[LabelMediaType]; mt != "" && mt != MediaTypeRegistryV1 {
		errs = append(errs, fmt.Errorf("bundle image: metadata/annotations.yaml: %s is %q, want %s", LabelMediaType, mt, MediaTypeRegistryV1))
	}
	return labels, errors.Join(errs...)
}

func buildImage(trees map[string]fs.FS, labels map[string]string) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := make([]string, 0, len(trees))
	for d := range trees {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		if err := writeTree(tw, d, trees[d]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithCompressedCaching, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Labels = labels
	return mutate.ConfigFile(img, cfg)
}

// writeTree writes fsys under prefix/: directories and regular files only.
func writeTree(tw *tar.Writer, prefix string, fsys fs.FS) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: prefix + "/", Mode: 0o755, ModTime: epoch}); err != nil {
		return err
	}
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		name := path.Join(prefix, p)
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: epoch})
		case d.Type().IsRegular():
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}); err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		default:
			return fmt.Errorf("%s: only directories and regular files go into an image", name)
		}
	})
}

// Push writes img to ref (a tag or digest reference) and returns the
// reference pinned by digest.
func (c *Client) Push(ctx context.Context, ref string, img v1.Image) (name.Digest, error) {
	r, err := c.reference(ref)
	if err != nil {
		return name.Digest{}, err
	}
	if err := remote.Write(r, img, c.options(ctx)...); err != nil {
		return name.Digest{}, fmt.Errorf("pushing %s: %w", ref, classify(err))
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return r.Context().Digest(d.String()), nil
}
