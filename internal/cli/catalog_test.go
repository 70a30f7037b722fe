package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCatalog(t *testing.T) {
	addr := sampleCatalogd(t)
	catalogSource(t, "ferry-samples", addr, 10)

	cases := []struct {
		name   string
		args   []string
		golden string
	}{
		{name: "search by name", args: []string{"catalog", "search", "LIGHT"}, golden: "catalog-search"},
		{name: "search everything in one catalog", args: []string{"catalog", "search", "--catalog", "ferry-samples"}, golden: "catalog-search-all"},
		{name: "show", args: []string{"catalog", "show", "lighthouse-operator"}, golden: "catalog-show"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { golden(t, tc.golden, mustRun(t, tc.args...).out) })
	}

	t.Run("show json", func(t *testing.T) {
		var p struct {
			Name           string `json:"name"`
			DefaultChannel string `json:"default_channel"`
			Channels       []struct {
				Name string `json:"name"`
			} `json:"channels"`
		}
		if err := json.Unmarshal([]byte(mustRun(t, "catalog", "show", "signal-store", "-o", "json").out), &p); err != nil {
			t.Fatal(err)
		}
		if p.Name != "signal-store" || p.DefaultChannel != "stable" || len(p.Channels) != 2 {
			t.Errorf("unexpected package: %+v", p)
		}
	})
	t.Run("search json", func(t *testing.T) {
		var found []struct {
			Catalog string `json:"catalog"`
			Package struct {
				Name string `json:"name"`
			} `json:"package"`
		}
		if err := json.Unmarshal([]byte(mustRun(t, "catalog", "search", "signal", "-o", "json").out), &found); err != nil {
			t.Fatal(err)
		}
		if len(found) != 1 || found[0].Catalog != "ferry-samples" || found[0].Package.Name != "signal-store" {
			t.Errorf("unexpected result: %+v", found)
		}
	})
	t.Run("no match", func(t *testing.T) {
		r := mustRun(t, "catalog", "search", "harbor")
		if r.out != "" || r.errOut != "No package matches \"harbor\".\n" {
			t.Errorf("stdout %q, stderr %q", r.out, r.errOut)
		}
	})

	t.Run("errors", func(t *testing.T) {
		cases := []struct {
			name      string
			args      []string
			fragments []string
		}{
			{name: "no such package", args: []string{"catalog", "show", "harbor-operator"}, fragments: []string{`package "harbor-operator" not found in catalog "ferry-samples"`}},
			{name: "no such catalog", args: []string{"catalog", "search", "--catalog", "nope"}, fragments: []string{`CatalogSource "nope" not found (there: ferry-samples)`}},
			{name: "bad catalog address", args: []string{"catalog", "search", "--catalog-address", "nowhere"}, fragments: []string{`--catalog-address "nowhere": not host:port`}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { wantError(t, tc.args, tc.fragments...) })
		}
	})

	t.Run("a catalog that does not answer", func(t *testing.T) {
		down := sampleCatalogd(t)
		catalogSource(t, "down", down, 0)
		// Stop it: the address stays known, nothing listens there any more.
		stopCatalogd(t, down)
		r := run(t, "catalog", "search", "light")
		if r.err == nil || !strings.Contains(r.err.Error(), `catalog "down" at `+down+": ListPackages: catalogd is not reachable from here") ||
			!strings.Contains(r.err.Error(), "--catalog-address") {
			t.Errorf("error %v", r.err)
		}
		if !strings.Contains(r.out, "lighthouse-operator") {
			t.Errorf("the catalog that answers is not listed:\n%s", r.out)
		}
	})

	t.Run("through --catalog-address", func(t *testing.T) {
		catalogSource(t, "in-cluster", "catalogd.ferry-system.svc:50051", 0)
		r := mustRun(t, "catalog", "show", "beacon-metrics", "--catalog", "in-cluster", "--catalog-address", addr)
		if !strings.Contains(r.out, "Catalog:          in-cluster") {
			t.Errorf("stdout:\n%s", r.out)
		}
	})
}
