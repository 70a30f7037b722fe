package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/ociimage"
	"github.com/ferrydev/ferry/internal/testregistry"
)

// TestPublishPush: publish --push pushes the validated bundle as a
// registry+v1 bundle image that pulls back as the same bundle; an invalid
// bundle or a refusing registry gets its exit code and pushes nothing.
func TestPublishPush(t *testing.T) {
	addr := testregistry.Start(t)
	ref := addr + "/bundles/lighthouse-operator:1.3.0"
	var stdout, stderr bytes.Buffer
	if code := run([]string{"publish", "--push", ref, "../../bundles/lighthouse-operator/1.3.0"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	line := strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(line, "pushed package=lighthouse-operator version=1.3.0 bundle=lighthouse-operator.v1.3.0 image="+addr+"/bundles/lighthouse-operator@sha256:") {
		t.Fatalf("stdout %q", line)
	}
	pinned := line[strings.Index(line, "image=")+len("image="):]

	client, err := ociimage.NewClient(ociimage.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	content, err := client.PullBundle(context.Background(), pinned)
	if err != nil {
		t.Fatal(err)
	}
	for label, want := range map[string]string{
		ociimage.LabelMediaType: "registry+v1", ociimage.LabelPackage: "lighthouse-operator",
		ociimage.LabelManifests: "manifests/", ociimage.LabelMetadata: "metadata/",
	} {
		if content.Labels[label] != want {
			t.Errorf("label %s=%q, want %q", label, content.Labels[label], want)
		}
	}
	pulled, err := catalog.Load(context.Background(), []catalog.Source{{Name: "pulled", Dir: content.Dir, Format: catalog.FormatBundle}})
	if err != nil {
		t.Fatal(err)
	}
	local, err := catalog.Load(context.Background(), []catalog.Source{{Name: "local", Dir: "../../bundles/lighthouse-operator/1.3.0", Format: catalog.FormatBundle}})
	if err != nil {
		t.Fatal(err)
	}
	pb, lb := pulled.FindBundle("lighthouse-operator.v1.3.0"), local.FindBundle("lighthouse-operator.v1.3.0")
	if pb == nil || lb == nil || pb.ManifestsDigest() != lb.ManifestsDigest() {
		t.Fatalf("the pushed bundle does not pull back as the local one")
	}

	for _, tc := range []struct {
		name, dir, ref string
		auth           bool
		code           int
		stderr         string
	}{
		{name: "invalid bundle", dir: writeBrokenBundle(t), ref: addr + "/bundles/broken:1", code: 2, stderr: "nothing was uploaded"},
		{name: "registry asks for credentials", dir: "../../bundles/lighthouse-operator/1.3.0", auth: true, code: 3, stderr: "the registry refused access"},
		{name: "no tag", dir: "../../bundles/lighthouse-operator/1.3.0", ref: addr + "/bundles/x", code: 1, stderr: "give a tag or a digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := tc.ref
			if tc.auth {
				f := testregistry.NewFaulty(t)
				f.RequireAuth("ci", "s3cret")
				ref = f.Addr + "/bundles/lighthouse-operator:1.3.0"
			}
			var stdout, stderr bytes.Buffer
			code := run([]string{"publish", "--push", ref, tc.dir}, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) || stdout.Len() != 0 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d saying %q", code, stdout.String(), stderr.String(), tc.code, tc.stderr)
			}
			if _, err := client.PullBundle(context.Background(), addr+"/bundles/broken:1"); !errors.Is(err, ociimage.ErrNotFound) {
				t.Fatalf("the invalid bundle is in the registry: %v", err)
			}
		})
	}
}

// writeBrokenBundle writes a bundle whose annotations lack the package.
func writeBrokenBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range map[string]string{
		"metadata/annotations.yaml": "annotations:\n  operators.operatorframework.io.bundle.mediatype.v1: registry+v1\n",
		"manifests/csv.yaml":        "apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: broken.v1.0.0\n",
	} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
