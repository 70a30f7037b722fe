package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Command is one image: a main package of the module, and the name of the
// image and of its binary.
type Command struct {
	// Name of the image (the last element of its repository) and of the
	// binary, which sits at /<Name> in the image.
	Name string
	// Package is the main package, relative to the module root.
	Package string
	// Tools are more binaries shipped in the image, each at /<Name>, that
	// are not its entrypoint.
	Tools []Tool
}

// Tool is a binary an image ships besides its entrypoint.
type Tool struct {
	// Name of the binary, which sits at /<Name> in the image.
	Name string
	// Package is the main package, relative to the module root.
	Package string
}

// Commands lists Ferry's images. The installer image also ships the
// kubectl plugin, so that the plugin of a release is where its installer is:
// docker cp (or crane export) /kubectl-ferry out of it.
var Commands = []Command{
	{Name: "catalogd", Package: "./cmd/catalogd"},
	{Name: "installer", Package: "./cmd/installer", Tools: []Tool{{Name: "kubectl-ferry", Package: "./cmd/kubectl-ferry"}}},
}

// binaries lists every binary of c's image, the entrypoint first.
func (c Command) binaries() []Tool {
	return append([]Tool{{Name: c.Name, Package: c.Package}}, c.Tools...)
}

// Defaults and fixed properties of the images.
const (
	// DefaultRepository is where released images live: <it>/<Command.Name>.
	// config/ and the chart name the images there.
	DefaultRepository = "ghcr.io/ferrydev/ferry"
	// Source is the org.opencontainers.image.source label.
	Source = "https://github.com/ferrydev/ferry"
	// User the entrypoint runs as (the distroless nonroot user), which
	// config/ and the chart also set.
	User = "65532:65532"
)

// OCI label and annotation keys.
const (
	LabelTitle    = "org.opencontainers.image.title"
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelSource   = "org.opencontainers.image.source"
	LabelCreated  = "org.opencontainers.image.created"
	// AnnotationRefName names an image in an OCI layout.
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// Metadata describes the build, for the labels.
type Metadata struct {
	// Version is the image tag and the version label, e.g. v0.2.0.
	Version string
	// Revision is the commit the binaries are built from.
	Revision string
	// Created is the time in the labels, the config and the layer's file
	// times; the commit time keeps builds reproducible.
	Created time.Time
}

// tagPattern is the syntax of an image tag.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// Validate reports every missing or malformed field.
func (m Metadata) Validate() error {
	var errs []error
	if !tagPattern.MatchString(m.Version) {
		errs = append(errs, fmt.Errorf("version %q: not a valid image tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})", m.Version))
	}
	if m.Revision == "" {
		errs = append(errs, errors.New("revision: empty"))
	}
	if m.Created.IsZero() {
		errs = append(errs, errors.New("created: not set"))
	}
	return errors.Join(errs...)
}

type buildOptions struct {
	goBinary string
	arch     string
	stderr   io.Writer
}

// BuildOption configures Build.
type BuildOption func(*buildOptions)

// WithGo sets the go command (default "go" from PATH).
func WithGo(path string) BuildOption { return func(o *buildOptions) { o.goBinary = path } }

// WithArch sets the target architecture (default: this machine's).
func WithArch(arch string) BuildOption { return func(o *buildOptions) { o.arch = arch } }

// WithStderr receives the compiler's output (default: discarded; it is
// part of the error when a build fails).
func WithStderr(w io.Writer) BuildOption { return func(o *buildOptions) { o.stderr = w } }

// Image is a built image.
type Image struct {
	// Command the image runs.
	Command Command
	// Image is the image itself.
	Image v1.Image
	// Digest of its manifest.
	Digest v1.Hash
}

// Build compiles each command in the module at moduleRoot and makes its
// image.
func Build(ctx context.Context, moduleRoot string, meta Metadata, cmds []Command, opts ...BuildOption) ([]Image, error) {
	o := buildOptions{goBinary: "go", arch: runtime.GOARCH, stderr: io.Discard}
	for _, opt := range opts {
		opt(&o)
	}
	if err := meta.Validate(); err != nil {
		return nil, fmt.Errorf("image metadata: %w", err)
	}
	if len(cmds) == 0 {
		return nil, errors.New("no commands to build")
	}
	tmp, err := os.MkdirTemp("", "ferry-images-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	out := make([]Image, 0, len(cmds))
	for _, c := range cmds {
		dir := filepath.Join(tmp, c.Name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, err
		}
		for _, b := range c.binaries() {
			if err := compile(ctx, moduleRoot, b.Package, filepath.Join(dir, b.Name), o); err != nil {
				return nil, err
			}
		}
		img, err := imageOf(c, dir, meta, o.arch)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", c.Name, err)
		}
		d, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", c.Name, err)
		}
		out = append(out, Image{Command: c, Image: img, Digest: d})
	}
	return out, nil
}

// compile builds a static, reproducible Linux binary.
func compile(ctx context.Context, moduleRoot, pkg, bin string, o buildOptions) error {
	cmd := exec.CommandContext(ctx, o.goBinary, "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", bin, pkg)
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.arch)
	var stderr bytes.Buffer
	cmd.Stdout = o.stderr
	cmd.Stderr = io.MultiWriter(o.stderr, &stderr)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w: %s", pkg, err, strings.TrimSpace(tail(stderr.String(), 4096)))
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Labels returns the OCI labels of the image of c.
func Labels(c Command, meta Metadata) map[string]string {
	return map[string]string{
		LabelTitle:    c.Name,
		LabelVersion:  meta.Version,
		LabelRevision: meta.Revision,
		LabelSource:   Source,
		LabelCreated:  meta.Created.UTC().Format(time.RFC3339),
	}
}

// imageOf puts each binary of c, compiled into dir, at /<name> on an empty
// base, in one layer: the entrypoint first, then the tools in order.
func imageOf(c Command, dir string, meta Metadata, arch string) (v1.Image, error) {
	created := meta.Created.UTC().Truncate(time.Second)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var pkgs []string
	for _, b := range c.binaries() {
		data, err := os.ReadFile(filepath.Join(dir, b.Name))
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg, Name: b.Name, Mode: 0o555, Size: int64(len(data)),
			ModTime: created, AccessTime: created, ChangeTime: created, Format: tar.FormatPAX,
		}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
		pkgs = append(pkgs, b.Package)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	tarBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	labels := Labels(c, meta)
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: created},
		Config: v1.Config{
			Entrypoint: []string{"/" + c.Name},
			User:       User,
			WorkingDir: "/",
			Labels:     labels,
		},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "go build -trimpath " + strings.Join(pkgs, " ") + " (CGO_ENABLED=0)", Comment: "ferry images"},
	})
	if err != nil {
		return nil, err
	}
	annotated, ok := mutate.Annotations(img, labels).(v1.Image)
	if !ok {
		return nil, errors.New("annotating the manifest did not return an image")
	}
	return annotated, nil
}

// WriteLayout writes the images as an OCI image layout at dir, replacing
// a layout already there; each image is named <name>:<version> in the
// index (org.opencontainers.image.ref.name). A directory that is neither
// empty nor an OCI layout is refused.
func WriteLayout(dir string, imgs []Image, version string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			return fmt.Errorf("%s is not empty and not an OCI layout; refusing to replace it", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	for _, im := range imgs {
		if err := p.AppendImage(im.Image, layout.WithAnnotations(map[string]string{
			AnnotationRefName: im.Command.Name + ":" + version,
		})); err != nil {
			return fmt.Errorf("OCI layout %s: image %s: %w", dir, im.Command.Name, err)
		}
	}
	return nil
}

// ReadLayout returns the images of an OCI layout written by WriteLayout,
// by command name.
func ReadLayout(dir string) (map[string]v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	out := map[string]v1.Image{}
	for _, d := range m.Manifests {
		ref := d.Annotations[AnnotationRefName]
		cmdName, _, ok := strings.Cut(ref, ":")
		if !ok {
			return nil, fmt.Errorf("OCI layout %s: manifest %s: ref name %q is not <name>:<version>", dir, d.Digest, ref)
		}
		img, err := p.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("OCI layout %s: %s: %w", dir, ref, err)
		}
		out[cmdName] = img
	}
	return out, nil
}

// Pushed is an image in a registry.
type Pushed struct {
	// Command the image runs.
	Command Command
	// Tag is <repository>/<name>:<version>.
	Tag name.Tag
	// Digest is <repository>/<name>@sha256:…, what manifests should name.
	Digest name.Digest
}

// Push pushes each image to <repository>/<name>:<version>. Credentials
// come from the Docker config (~/.docker/config.json). Only a registry on
// a loopback address (localhost, 127.0.0.0/8, ::1) may answer over plain
// HTTP; every other one must speak HTTPS (go-containerregistry alone would
// also fall back to HTTP for private addresses such as 10.0.0.0/8).
func Push(ctx context.Context, imgs []Image, repository, version string, opts ...remote.Option) ([]Pushed, error) {
	repository = strings.TrimSuffix(repository, "/")
	opts = append([]remote.Option{
		remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithTransport(loopbackHTTPOnly{base: remote.DefaultTransport}),
	}, opts...)
	out := make([]Pushed, 0, len(imgs))
	for _, im := range imgs {
		tag, err := name.NewTag(repository + "/" + im.Command.Name + ":" + version)
		if err != nil {
			return nil, fmt.Errorf("repository %q: %w", repository, err)
		}
		if err := remote.Write(tag, im.Image, opts...); err != nil {
			return nil, fmt.Errorf("pushing %s: %w", tag, err)
		}
		out = append(out, Pushed{Command: im.Command, Tag: tag, Digest: tag.Context().Digest(im.Digest.String())})
	}
	return out, nil
}

// DeployEnv is the content of deploy.env: IMG_<NAME>=<repository>/<name>@<digest>
// for each pushed image, read by make deploy (hack/deploy.sh pins the
// images of config/default to these digests).
func DeployEnv(pushed []Pushed) string {
	var b strings.Builder
	b.WriteString("# Written by make images-push: the images make deploy uses, pinned by digest.\n")
	for _, p := range pushed {
		fmt.Fprintf(&b, "IMG_%s=%s\n", strings.ToUpper(p.Command.Name), p.Digest)
	}
	return b.String()
}

// ChartValues is a values file for charts/ferry that pins each pushed image
// by digest (<name>.image.repository and .digest; the tag is kept for
// people reading it).
func ChartValues(pushed []Pushed) string {
	var b strings.Builder
	b.WriteString("# Written by make images-push: helm install ... -f this file pins the images by digest.\n")
	for _, p := range pushed {
		fmt.Fprintf(&b, "%s:\n  image:\n    repository: %s\n    tag: %q\n    digest: %q\n",
			p.Command.Name, p.Tag.Context().Name(), p.Tag.TagStr(), p.Digest.DigestStr())
	}
	return b.String()
}

// loopbackHTTPOnly refuses plain HTTP requests to hosts that are not
// loopback addresses, so that credentials and images never travel
// unencrypted over a network.
type loopbackHTTPOnly struct{ base http.RoundTripper }

func (t loopbackHTTPOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !isLoopback(req.URL.Hostname()) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: only registries on a loopback address are spoken to without TLS", req.URL.Host)
	}
	return t.base.RoundTrip(req)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
