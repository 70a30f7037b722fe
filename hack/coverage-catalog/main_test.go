package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/install"

	corpuspkg "github.com/ferrydev/ferry/internal/corpus"
)

// TestMeasureCorpus measures the real catalog and checks that the grouping
// is complete: every package in exactly one group, every group explained.
func TestMeasureCorpus(t *testing.T) {
	corpus := DefaultCorpus()
	if _, err := os.Stat(filepath.Dir(corpus)); os.IsNotExist(err) {
		t.Skipf("%s is absent: the shared corpus of real catalogs is not next to this clone", filepath.Dir(corpus))
	}
	ctx := context.Background()
	root, err := corpuspkg.Extract(ctx, corpus, DefaultCache())
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Load(ctx, []catalog.Source{catalog.DirSource(root)})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Measure(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Packages != len(c.Packages) || len(rep.Outcomes) != len(c.Packages) {
		t.Fatalf("%d outcomes for %d packages (report says %d)", len(rep.Outcomes), len(c.Packages), rep.Packages)
	}
	names, by := rep.Groups()
	seen := map[string]string{}
	total := 0
	for _, g := range names {
		total += len(by[g])
		for _, o := range by[g] {
			if prev, ok := seen[o.Package]; ok {
				t.Errorf("package %s in groups %q and %q", o.Package, prev, g)
			}
			seen[o.Package] = g
			if g != GroupInstalls && o.Detail == "" {
				t.Errorf("package %s in group %q without a reason", o.Package, g)
			}
			if o.Bundle == "" && g != GroupNoChannel {
				t.Errorf("package %s in group %q names no bundle", o.Package, g)
			}
		}
	}
	for _, p := range c.Packages {
		if _, ok := seen[p.Name]; !ok {
			t.Errorf("package %s is in no group", p.Name)
		}
	}
	if total != len(c.Packages) {
		t.Errorf("groups hold %d packages, the catalog has %d", total, len(c.Packages))
	}
	if len(by[GroupInstalls]) == 0 {
		t.Error("no package installs")
	}
	if o := by[GroupOtherError]; len(o) > 0 {
		t.Logf("%d packages fall in %q, e.g. %s: %s", len(o), GroupOtherError, o[0].Package, o[0].Detail)
	}
	var b strings.Builder
	if err := rep.Write(&b, filepath.Base(corpus), false); err != nil {
		t.Fatal(err)
	}
	for _, g := range names {
		if !strings.Contains(b.String(), "| "+g+" | ") {
			t.Errorf("the table has no row for group %q", g)
		}
	}
	t.Log("\n" + b.String())
}

func TestGroupOf(t *testing.T) {
	// Each case is a message install.Render gives; the group must not be
	// the catch-all.
	for _, tc := range []struct {
		name, reason, want string
	}{
		{"webhooks", "ClusterServiceVersion x.v1: spec.webhookdefinitions[1] (vx.example.com): rules[0].apiGroups: names \"*\"; a webhook may not intercept *", "webhooks (spec.webhookdefinitions)"},
		{"unsupported kind", "manifest #7 (Role example): kind Role (apiVersion iam.services.k8s.aws/v1alpha1) cannot be installed; a bundle may ship X", "unsupported kind Role (iam.services.k8s.aws/v1alpha1)"},
		{"old CRD", "manifest #0 (CustomResourceDefinition a.b): CustomResourceDefinition a.b uses apiextensions.k8s.io/v1beta1; only apiextensions.k8s.io/v1 is served", "CustomResourceDefinition apiextensions.k8s.io/v1beta1"},
		{"foreign subject", "ClusterRoleBinding x: subjects[0] (ServiceAccount other/y) is not a ServiceAccount of the bundle in namespace ns; a bundle may bind only its own ServiceAccounts (z), and another ServiceAccount only with a RoleBinding to a Role the bundle installs, never with a ClusterRoleBinding", "binds a ServiceAccount that is not the bundle's own, cluster-wide or to a role it does not ship"},
		{"group", "ClusterRoleBinding x: subjects[0] (Group system:authenticated) is not a ServiceAccount of the bundle in namespace ns; a bundle may bind only its own ServiceAccounts (z), never a user or a group", "binds a user or a group"},
		{"unknown", "something new", GroupOtherError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := groupOf(&install.InvalidBundleError{Bundle: "x.v1", Reason: tc.reason}); got != tc.want {
				t.Errorf("group %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGroupOfInstallMode(t *testing.T) {
	got, detail := groupOf(&install.UnsupportedInstallModeError{})
	if got != "install mode (neither AllNamespaces nor OwnNamespace)" || detail == "" {
		t.Errorf("group %q (%q)", got, detail)
	}
}
