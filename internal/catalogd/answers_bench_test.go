package catalogd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/proto/api"
)

// BenchmarkAnswer: a kept single-bundle answer of about 512 KiB taken from
// the cache and marshalled by the server codec, then freed as the transport
// frees it; in memory and from the answer file. From the answer file the
// answer is sent from the file's mapping: nothing of its size is allocated.
func BenchmarkAnswer(b *testing.B) {
	dir := b.TempDir()
	c := bigBundleCatalog(b, dir)
	codec := newPassthroughCodec()
	req := &api.GetBundleInChannelRequest{PkgName: "big", ChannelName: "stable"}
	for _, inFile := range []bool{false, true} {
		b.Run(fmt.Sprintf("file=%v", inFile), func(b *testing.B) {
			s := NewRegistryServer(NewHolder(c), WithAnswerFile(dir, DefaultAnswerCacheBytes))
			if !inFile {
				s = NewRegistryServer(NewHolder(c))
			}
			b.Cleanup(func() { _ = s.Close() })
			if _, err := s.encodedGetBundleForChannel(req); err != nil { // kept
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				m, err := s.encodedGetBundleForChannel(req)
				if err != nil {
					b.Fatal(err)
				}
				out, err := codec.Marshal(m)
				if err != nil {
					b.Fatal(err)
				}
				out.Free()
			}
		})
	}
}

// bigBundleCatalog writes and loads, in dir, a catalog of one bundle whose
// answer is about 512 KiB.
func bigBundleCatalog(tb testing.TB, dir string) *catalog.Catalog {
	tb.Helper()
	bundle := filepath.Join(dir, "big", "1.0.0")
	files := map[string]string{
		"metadata/annotations.yaml": "annotations:\n  operators.operatorframework.io.bundle.mediatype.v1: registry+v1\n" +
			"  operators.operatorframework.io.bundle.package.v1: big\n  operators.operatorframework.io.bundle.channels.v1: stable\n",
		"manifests/big.clusterserviceversion.yaml": "apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\n" +
			"metadata:\n  name: big.v1.0.0\nspec:\n  version: 1.0.0\n",
		"manifests/data.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: data\ndata:\n  blob: " + strings.Repeat("x", 512<<10) + "\n",
	}
	for p, content := range files {
		full := filepath.Join(bundle, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return loadClean(tb, dir)
}

// BenchmarkListBundles: the kept ListBundles answer of a catalog of 4,000
// image-only bundles (entries of 0.5–2 KB, as in the community catalog)
// sent entry by entry through the server codec and freed as the transport
// frees it; kept in memory and in the answer file.
func BenchmarkListBundles(b *testing.B) {
	dir := b.TempDir()
	c := manyBundlesCatalog(b, dir, 4000)
	codec := newPassthroughCodec()
	send := func(m *encodedMessage) error {
		out, err := codec.Marshal(m)
		if err != nil {
			return err
		}
		out.Free()
		return nil
	}
	for _, inFile := range []bool{false, true} {
		b.Run(fmt.Sprintf("file=%v", inFile), func(b *testing.B) {
			s := NewRegistryServer(NewHolder(c))
			if inFile {
				s = NewRegistryServer(NewHolder(c), WithAnswerFile(dir, DefaultAnswerCacheBytes))
			}
			b.Cleanup(func() { _ = s.Close() })
			if err := s.listBundles(c, send); err != nil { // kept
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := s.listBundles(c, send); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// manyBundlesCatalog writes and loads, in dir, one package of n bundles
// that name images only, with one to eight provided APIs each.
func manyBundlesCatalog(tb testing.TB, dir string, n int) *catalog.Catalog {
	tb.Helper()
	var fbc strings.Builder
	fmt.Fprintf(&fbc, `{"schema":"olm.package","name":"many","defaultChannel":"stable"}`+"\n")
	var entries []string
	for i := range n {
		name := fmt.Sprintf("many.v1.0.%d", i)
		prev := ""
		if i > 0 {
			prev = fmt.Sprintf(`,"replaces":"many.v1.0.%d"`, i-1)
		}
		entries = append(entries, fmt.Sprintf(`{"name":%q%s}`, name, prev))
		props := []string{fmt.Sprintf(`{"type":"olm.package","value":{"packageName":"many","version":"1.0.%d"}}`, i)}
		for k := range 1 + i%8 {
			props = append(props, fmt.Sprintf(`{"type":"olm.gvk","value":{"group":"many%d.example.com","kind":"Widget%d","version":"v1"}}`, k, k))
		}
		fmt.Fprintf(&fbc, `{"schema":"olm.bundle","name":%q,"package":"many","image":"quay.io/example/many-bundle:v1.0.%d","properties":[%s]}`+"\n",
			name, i, strings.Join(props, ","))
	}
	fmt.Fprintf(&fbc, `{"schema":"olm.channel","name":"stable","package":"many","entries":[%s]}`+"\n", strings.Join(entries, ","))
	root := filepath.Join(dir, "many")
	if err := os.MkdirAll(root, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "catalog.json"), []byte(fbc.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return loadClean(tb, root)
}

// loadClean loads the catalog in dir, which must have no problem.
func loadClean(tb testing.TB, dir string) *catalog.Catalog {
	tb.Helper()
	c, err := catalog.Load(context.Background(), []catalog.Source{catalog.DirSource(dir)})
	if err != nil {
		tb.Fatal(err)
	}
	if len(c.Problems) != 0 {
		tb.Fatalf("problems: %v", c.Problems)
	}
	return c
}
