package catalog

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
)

func bundleFiles(prefix, pkg, version, channels, replaces string) fstest.MapFS {
	fsys := fstest.MapFS{}
	fsys[prefix+"metadata/annotations.yaml"] = &fstest.MapFile{Data: []byte("annotations:\n" +
		"  operators.operatorframework.io.bundle.mediatype.v1: registry+v1\n" +
		"  operators.operatorframework.io.bundle.package.v1: " + pkg + "\n" +
		"  operators.operatorframework.io.bundle.channels.v1: " + channels + "\n")}
	csv := "apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: " + pkg + ".v" + version + "\nspec:\n  version: " + version + "\n"
	if replaces != "" {
		csv += "  replaces: " + replaces + "\n"
	}
	fsys[prefix+"manifests/csv.yaml"] = &fstest.MapFile{Data: []byte(csv)}
	return fsys
}

func merged(parts ...fstest.MapFS) fstest.MapFS {
	out := fstest.MapFS{}
	for _, p := range parts {
		for k, v := range p {
			out[k] = v
		}
	}
	return out
}

func TestOverlayJoinsBundleTreePackage(t *testing.T) {
	static := merged(bundleFiles("foo/1.0.0/", "foo", "1.0.0", "stable", ""), bundleFiles("foo/1.1.0/", "foo", "1.1.0", "stable", "foo.v1.0.0"))
	overlay := merged(bundleFiles("foo/1.2.0/", "foo", "1.2.0", "stable", "foo.v1.1.0"), bundleFiles("bar/0.1.0/", "bar", "0.1.0", "alpha", ""))
	c, err := Load(context.Background(), []Source{
		{Name: "static", FS: static},
		{Name: "published", FS: overlay, Format: FormatBundleTree, Overlay: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Problems) != 0 {
		t.Fatalf("problems: %v", c.Problems)
	}
	foo := c.Package("foo")
	if foo == nil || foo.Channel("stable").Head != "foo.v1.2.0" || len(foo.Bundles) != 3 {
		t.Fatalf("foo: %+v", foo)
	}
	if b := foo.Bundle("foo.v1.2.0"); b.Source != "published/foo/1.2.0" {
		t.Errorf("source %s", b.Source)
	}
	if c.Package("bar") == nil {
		t.Error("bar, only in the overlay, is not served")
	}

	// Without Overlay the same package in two sources is declared twice.
	c, err = Load(context.Background(), []Source{{Name: "static", FS: static}, {Name: "other", FS: overlay, Format: FormatBundleTree}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range c.Problems.Errors() {
		found = found || (p.Path == "other/foo/" && strings.Contains(p.Reason, `package "foo" is declared again (first in static/foo/)`))
	}
	if !found {
		t.Fatalf("problems: %v", c.Problems)
	}
}

func TestValidateBundle(t *testing.T) {
	info, ps := ValidateBundle(bundleFiles("", "foo", "1.2.0", "stable,fast", "foo.v1.1.0"))
	if info == nil || info.Package != "foo" || info.Name != "foo.v1.2.0" || info.Version.String() != "1.2.0" ||
		strings.Join(info.Channels, ",") != "stable,fast" || info.Replaces != "foo.v1.1.0" || !strings.HasPrefix(info.Digest, "sha256:") {
		t.Fatalf("info %+v, problems %v", info, ps)
	}
	bad := bundleFiles("", "foo", "1.2.0", "", "")
	info, ps = ValidateBundle(bad)
	if info != nil || len(ps.Errors()) != 1 ||
		ps.Errors()[0].String() != "metadata/annotations.yaml: operators.operatorframework.io.bundle.channels.v1: missing; a bundle must belong to at least one channel" {
		t.Fatalf("info %+v, problems %v", info, ps)
	}
}
