package catalogd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/proto/api"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// stableJSON marshals m with protojson and re-indents it, because protojson
// varies its whitespace on purpose.
func stableJSON(t *testing.T, m proto.Message) json.RawMessage {
	t.Helper()
	raw, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRegistryGolden records the api.Registry answers for the sample catalog:
// ListPackages, GetPackage for each package and ListBundles.
func TestRegistryGolden(t *testing.T) {
	cl := api.NewRegistryClient(startServer(t, catalogd.NewHolder(sampleCatalog(t))))
	ctx := context.Background()

	type golden struct {
		ListPackages []json.RawMessage          `json:"ListPackages"`
		GetPackage   map[string]json.RawMessage `json:"GetPackage"`
		ListBundles  []json.RawMessage          `json:"ListBundles"`
	}
	out := golden{GetPackage: map[string]json.RawMessage{}}

	ps, err := cl.ListPackages(ctx, &api.ListPackageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	names, err := recvAll[api.PackageName](ps)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		out.ListPackages = append(out.ListPackages, stableJSON(t, n))
		p, err := cl.GetPackage(ctx, &api.GetPackageRequest{Name: n.Name})
		if err != nil {
			t.Fatal(err)
		}
		out.GetPackage[n.Name] = stableJSON(t, p)
	}
	for _, b := range listRegistryBundles(t, cl) {
		out.ListBundles = append(out.ListBundles, stableJSON(t, b))
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()

	path := filepath.Join("testdata", "registry.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/catalogd -run Golden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("api.Registry answers differ from %s; run go test ./internal/catalogd -run Golden -update and review the diff\n%s", path, firstDiff(want, got))
	}
}

// firstDiff shows the first line where got differs from want.
func firstDiff(want, got []byte) string {
	wl, gl := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g []byte
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if !bytes.Equal(w, g) {
			const max = 300
			if len(w) > max {
				w = append(w[:max:max], "..."...)
			}
			if len(g) > max {
				g = append(g[:max:max], "..."...)
			}
			return "line " + itoa(i+1) + ":\n- " + string(w) + "\n+ " + string(g)
		}
	}
	return ""
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
