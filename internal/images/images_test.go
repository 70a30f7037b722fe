package images

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferrydev/ferry/internal/testregistry"
)

// testMeta is fixed, so that two builds must give the same digests.
var testMeta = Metadata{Version: "v0.0.0-test", Revision: "0123456789abcdef0123456789abcdef01234567", Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// allImages is every image, built once per test binary by buildAll.
var allImages struct {
	once  sync.Once
	built []Image
	err   error
}

// buildAll builds every image once per test binary (each build links every
// command, ~30 s on 2 cores) and returns them; the tests only read them.
// TestImages builds them a second time on purpose, to compare digests.
func buildAll(t *testing.T) []Image {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the images hold Linux binaries; running them needs Linux")
	}
	root := moduleRoot(t)
	allImages.once.Do(func() {
		allImages.built, allImages.err = Build(context.Background(), root, testMeta, Commands)
	})
	if allImages.err != nil {
		t.Fatal(allImages.err)
	}
	return allImages.built
}

// file is one file of an image's layer, written out.
type file struct {
	path string
	hdr  *tar.Header
}

// extract writes every file of the image's only layer to dir, in the
// layer's order.
func extract(t *testing.T, img v1.Image, dir string) []file {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	if mt, _ := layers[0].MediaType(); mt != types.OCILayer {
		t.Errorf("layer media type %s", mt)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []file
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.Base(h.Name))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		out = append(out, file{path: path, hdr: h})
	}
	if len(out) == 0 {
		t.Fatal("empty layer")
	}
	return out
}

// TestImages: each image holds one static binary as its entrypoint (and
// its tools, static binaries too, next to it), runs it as 65532, carries the labels, answers --help with its usage, and is
// the same, digest for digest, when built again and when read back from the
// OCI layout.
func TestImages(t *testing.T) {
	built := buildAll(t)
	usage := map[string][]string{
		"catalogd":      {"catalogd [command]", "serve", "publish"},
		"installer":     {"Usage of installer:", "-catalog-tls-namespace", "-leader-elect"},
		"kubectl-ferry": {"kubectl ferry [command]", "approve", "rollback", "--kubeconfig"},
	}
	if len(built) != len(Commands) {
		t.Fatalf("%d images for %d commands", len(built), len(Commands))
	}
	for _, im := range built {
		t.Run(im.Command.Name, func(t *testing.T) {
			cf, err := im.Image.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			want := Labels(im.Command, testMeta)
			for k, v := range want {
				if cf.Config.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
				}
			}
			if cf.Config.Labels[LabelCreated] != "2026-01-02T03:04:05Z" {
				t.Errorf("created label %q", cf.Config.Labels[LabelCreated])
			}
			if cf.Config.User != User || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/"+im.Command.Name {
				t.Errorf("user %q, entrypoint %q", cf.Config.User, cf.Config.Entrypoint)
			}
			if cf.OS != "linux" || cf.Architecture != runtime.GOARCH || !cf.Created.Equal(testMeta.Created) {
				t.Errorf("platform %s/%s, created %s", cf.OS, cf.Architecture, cf.Created)
			}
			m, err := im.Image.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || m.Annotations[LabelVersion] != testMeta.Version {
				t.Errorf("manifest %s, config %s, annotations %v", m.MediaType, m.Config.MediaType, m.Annotations)
			}

			files := extract(t, im.Image, t.TempDir())
			names := []string{im.Command.Name}
			for _, tool := range im.Command.Tools {
				names = append(names, tool.Name)
			}
			if len(files) != len(names) {
				t.Fatalf("%d files in the layer, want %d (%v)", len(files), len(names), names)
			}
			for i, f := range files {
				hdr := f.hdr
				if hdr.Name != names[i] || hdr.Mode != 0o555 || hdr.Uid != 0 || !hdr.ModTime.Equal(testMeta.Created) {
					t.Errorf("layer entry %s mode %o uid %d mtime %s, want %s", hdr.Name, hdr.Mode, hdr.Uid, hdr.ModTime, names[i])
				}
				if out, err := exec.Command("go", "version", "-m", f.path).Output(); err != nil || !strings.Contains(string(out), "CGO_ENABLED=0") || !strings.Contains(string(out), "-trimpath=true") {
					t.Errorf("%s is not a static, trimmed build (%v):\n%s", hdr.Name, err, out)
				}
				cmd := exec.Command(f.path, "--help")
				cmd.Env = []string{} // as in the image: nothing inherited
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%s --help: %v\n%s", hdr.Name, err, out)
				}
				usage, ok := usage[hdr.Name]
				if !ok {
					t.Errorf("no usage to check for %s", hdr.Name)
				}
				for _, s := range usage {
					if !strings.Contains(string(out), s) {
						t.Errorf("%s --help does not show %q:\n%s", hdr.Name, s, out)
					}
				}
			}
		})
	}

	// Built again: the same digests.
	again, err := Build(context.Background(), moduleRoot(t), testMeta, Commands)
	if err != nil {
		t.Fatal(err)
	}
	for i := range built {
		if again[i].Digest != built[i].Digest {
			t.Errorf("%s: digest %s, then %s: the build is not reproducible", built[i].Command.Name, built[i].Digest, again[i].Digest)
		}
	}

	// Through an OCI layout and back.
	dir := filepath.Join(t.TempDir(), "oci")
	if err := WriteLayout(dir, built, testMeta.Version); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(dir, built, testMeta.Version); err != nil {
		t.Fatalf("replacing a layout: %v", err)
	}
	read, err := ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range built {
		got, ok := read[im.Command.Name]
		if !ok {
			t.Fatalf("%s missing from the layout: %v", im.Command.Name, read)
		}
		if d, _ := got.Digest(); d != im.Digest {
			t.Errorf("%s: layout digest %s, built %s", im.Command.Name, d, im.Digest)
		}
	}
	notLayout := t.TempDir()
	if err := os.WriteFile(filepath.Join(notLayout, "precious"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(notLayout, built, testMeta.Version); err == nil || !strings.Contains(err.Error(), "not an OCI layout") {
		t.Errorf("replacing a directory that is not a layout: %v", err)
	}
}

// TestPushToRegistry: the images pushed to a registry running as its own
// process (hack/registry) are pulled back by digest, identical, and
// deploy.env and the chart values name them by digest.
func TestPushToRegistry(t *testing.T) {
	built := buildAll(t)
	addr := testregistry.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pushed, err := Push(ctx, built, addr+"/ferry/", testMeta.Version)
	if err != nil {
		t.Fatal(err)
	}
	env, values := DeployEnv(pushed), ChartValues(pushed)
	for i, p := range pushed {
		im := built[i]
		wantDigest := addr + "/ferry/" + im.Command.Name + "@" + im.Digest.String()
		if p.Digest.String() != wantDigest || p.Tag.String() != addr+"/ferry/"+im.Command.Name+":"+testMeta.Version {
			t.Errorf("pushed %s %s, want %s", p.Tag, p.Digest, wantDigest)
		}
		ref, err := name.NewDigest(wantDigest)
		if err != nil {
			t.Fatal(err)
		}
		pulled, err := remote.Image(ref, remote.WithContext(ctx))
		if err != nil {
			t.Fatalf("pulling %s: %v", ref, err)
		}
		if d, _ := pulled.Digest(); d != im.Digest {
			t.Errorf("pulled %s, pushed %s", d, im.Digest)
		}
		pl, _ := pulled.Layers()
		bl, _ := im.Image.Layers()
		if len(pl) != 1 || len(bl) != 1 {
			t.Fatalf("layers: pulled %d, built %d", len(pl), len(bl))
		}
		pd, _ := pl[0].Digest()
		bd, _ := bl[0].Digest()
		if pd != bd {
			t.Errorf("layer %s pulled, %s built", pd, bd)
		}
		byTag, err := remote.Head(p.Tag, remote.WithContext(ctx))
		if err != nil || byTag.Digest != im.Digest {
			t.Errorf("tag %s: %+v %v", p.Tag, byTag, err)
		}
		if line := "IMG_" + strings.ToUpper(im.Command.Name) + "=" + wantDigest + "\n"; !strings.Contains(env, line) {
			t.Errorf("deploy.env lacks %q:\n%s", line, env)
		}
		if s := "    digest: \"" + im.Digest.String() + "\""; !strings.Contains(values, s) {
			t.Errorf("chart values lack %q:\n%s", s, values)
		}
	}
}

// TestMetadataValidate: every bad field is reported at once.
func TestMetadataValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		meta Metadata
		errs []string
	}{
		{name: "valid", meta: testMeta},
		{name: "empty", meta: Metadata{}, errs: []string{`version "": not a valid image tag`, "revision: empty", "created: not set"}},
		{name: "tag with a slash", meta: Metadata{Version: "feature/x", Revision: "r", Created: testMeta.Created}, errs: []string{`version "feature/x"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.meta.Validate()
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("valid")
			}
			for _, s := range tc.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
	if _, err := Build(context.Background(), ".", Metadata{}, Commands); err == nil || !strings.Contains(err.Error(), "image metadata") {
		t.Errorf("Build with bad metadata: %v", err)
	}
}

// roundTripper is a function as an http.RoundTripper.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestPlainHTTPOnlyToLoopback: plain HTTP reaches only loopback registries.
func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	ok := &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}
	tr := loopbackHTTPOnly{base: roundTripper(func(*http.Request) (*http.Response, error) { return ok, nil })}
	for _, tc := range []struct {
		url     string
		allowed bool
	}{
		{"http://127.0.0.1:5000/v2/", true},
		{"http://127.3.4.5:5000/v2/", true},
		{"http://localhost:5000/v2/", true},
		{"http://[::1]:5000/v2/", true},
		{"https://10.0.0.7:5000/v2/", true},
		{"https://registry.example.com/v2/", true},
		{"http://10.0.0.7:5000/v2/", false},
		{"http://192.168.1.2/v2/", false},
		{"http://registry.local/v2/", false},
		{"http://registry.example.com/v2/", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, tc.url, http.NoBody)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tr.RoundTrip(req)
			if resp != nil {
				defer resp.Body.Close()
			}
			if tc.allowed != (err == nil) {
				t.Errorf("allowed=%v, error %v", tc.allowed, err)
			}
			if err == nil && resp != ok {
				t.Error("not passed on")
			}
			if err != nil && !strings.Contains(err.Error(), "refusing plain HTTP to "+req.URL.Host) {
				t.Errorf("error %v", err)
			}
		})
	}
}
