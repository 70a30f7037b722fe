package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalogsource"
	"github.com/ferrydev/ferry/internal/cli"
	"github.com/ferrydev/ferry/internal/install"
)

// installVersion applies a version of the sample lighthouse-operator for
// sub as the installer does, and records it in sub's status.
func installVersion(t *testing.T, addr string, sub *v1alpha1.Subscription, version string) {
	t.Helper()
	ctx := context.Background()
	cl, err := catalogsource.Dial(addr, catalogsource.WithSecurity(catalogsource.PlaintextSecurity()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Close() }()
	bundle := sub.Spec.Package + ".v" + version
	b, err := cl.Bundle(ctx, sub.Spec.Package, bundle)
	if err != nil {
		t.Fatal(err)
	}
	owner := types.NamespacedName{Namespace: sub.Namespace, Name: sub.Name}
	r, err := install.Render(install.Input{Owner: owner, Namespace: sub.Namespace, Package: sub.Spec.Package, Version: version, Bundle: bundle, Manifests: catalogsource.ManifestsOf(b)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&install.Applier{Client: env.Client}).Apply(ctx, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// CRDs stay, as Ferry keeps them; the rest goes.
		for _, ref := range res.Inventory {
			if ref.Kind == "CustomResourceDefinition" {
				continue
			}
			u := &unstructured.Unstructured{}
			u.SetAPIVersion(strings.TrimPrefix(ref.Group+"/"+ref.Version, "/"))
			u.SetKind(ref.Kind)
			u.SetNamespace(ref.Namespace)
			u.SetName(ref.Name)
			_ = env.Client.Delete(context.Background(), u)
		}
	})
	sub.Status.InstalledVersion, sub.Status.InstalledBundle, sub.Status.Inventory = version, bundle, res.Inventory
}

func TestDiff(t *testing.T) {
	ctx := context.Background()
	addr := sampleCatalogd(t)
	catalogSource(t, "ferry-samples", addr, 0)
	ns := namespace(t, "diff")

	sub := lighthouse(ns)
	sub.Status.FailedUpgrade = nil
	installVersion(t, addr, sub, "1.3.0")
	create(t, sub)
	beacon := &unstructured.Unstructured{}
	beacon.SetAPIVersion("lighthouse.ferry.dev/v1")
	beacon.SetKind("Beacon")
	beacon.SetNamespace(ns)
	beacon.SetName("north")
	beacon.Object["spec"] = map[string]any{"target": "north", "intervalSeconds": int64(30)}
	if err := env.Client.Create(ctx, beacon); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), beacon) })

	deployment := client.ObjectKey{Namespace: ns, Name: "lighthouse-operator-controller-manager"}
	image := func() string {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(ctx, deployment, d); err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Spec.Containers[0].Image
	}
	liveImage := image()

	t.Run("pending upgrade", func(t *testing.T) {
		r := mustRun(t, "diff", "lighthouse-operator", "-n", ns)
		for _, want := range []string{
			"Subscription diff/lighthouse-operator: 1.3.0 -> 1.4.0 (lighthouse-operator.v1.4.0 from catalog ferry-samples)\n",
			"~ Deployment diff/lighthouse-operator-controller-manager (change)\n",
			"    -        image: registry.example.com/ferry/lighthouse-operator:v1.3.0\n",
			"    +        image: registry.example.com/ferry/lighthouse-operator:v1.4.0\n",
			"    +        ferry.dev/rollback-demo: never-matches\n",
			"CRD beacons.lighthouse.ferry.dev (policy Strict, 1 custom resources checked): safe\n",
			"RBAC:\n  no change\n",
		} {
			if !strings.Contains(r.out, want) {
				t.Errorf("the diff does not say %q:\n%s", want, r.out)
			}
		}
		for _, line := range strings.Split(r.out, "\n") {
			if strings.Contains(line, "managedFields") || strings.Contains(line, "resourceVersion") {
				t.Errorf("the diff shows server-written metadata: %q", line)
			}
		}
		if got := image(); got != liveImage {
			t.Errorf("the dry run changed the Deployment's image to %s", got)
		}
		var roles rbacv1.ClusterRoleList
		if err := env.Client.List(ctx, &roles, client.MatchingLabels(install.OwnerLabels(types.NamespacedName{Namespace: ns, Name: sub.Name}))); err != nil {
			t.Fatal(err)
		}
		for _, role := range roles.Items {
			if strings.Contains(role.Name, "v1.4.0") {
				t.Errorf("the dry run created ClusterRole %s", role.Name)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		var rep cli.DiffReport
		if err := json.Unmarshal([]byte(mustRun(t, "diff", "lighthouse-operator", "-n", ns, "-o", "json").out), &rep); err != nil {
			t.Fatal(err)
		}
		actions := map[string]string{}
		for _, o := range rep.Objects {
			actions[o.Object] = o.Action
		}
		if rep.From != "1.3.0" || rep.To != "1.4.0" || actions["Deployment diff/lighthouse-operator-controller-manager"] != "change" {
			t.Errorf("unexpected report: from %s to %s, actions %v", rep.From, rep.To, actions)
		}
		var created, deleted int
		for obj, a := range actions {
			if strings.HasPrefix(obj, "ClusterRole ") && a == "create" {
				created++
			}
			if strings.HasPrefix(obj, "ClusterRole ") && a == "delete" {
				deleted++
			}
		}
		if created == 0 || created != deleted {
			t.Errorf("the CSV's ClusterRoles are renamed with every version: %d created, %d deleted (%v)", created, deleted, actions)
		}
	})

	t.Run("a version that drops a stored CRD version", func(t *testing.T) {
		r := mustRun(t, "diff", "lighthouse-operator", "-n", ns, "--version", "1.1.1")
		want := "CRD beacons.lighthouse.ferry.dev (policy Strict, "
		if !strings.Contains(r.out, want) || !strings.Contains(r.out, "BLOCKED: the installer will not upgrade") {
			t.Errorf("the diff does not block the CRD change:\n%s", r.out)
		}
	})

	t.Run("errors", func(t *testing.T) {
		idle := lighthouse(ns)
		idle.Name = "idle"
		idle.Status.AvailableUpgrade, idle.Status.FailedUpgrade = nil, nil
		idle.Status.LatestVersion = "1.3.0"
		create(t, idle)
		orphan := lighthouse(ns)
		orphan.Name = "orphan"
		orphan.Spec.Catalog = "gone"
		create(t, orphan)
		cases := []struct {
			name      string
			args      []string
			fragments []string
		}{
			{name: "no such version", args: []string{"diff", "lighthouse-operator", "-n", ns, "--version", "9.9.9"},
				fragments: []string{`version "9.9.9" not found in package lighthouse-operator of catalog "ferry-samples" (there: 1.0.0, 1.1.0, 1.1.1, 1.2.0, 1.3.0, 1.4.0)`}},
			{name: "no pending upgrade", args: []string{"diff", "idle", "-n", ns},
				fragments: []string{"subscription diff/idle has no pending upgrade (installed: 1.3.0, latest: 1.3.0); name a version with --version"}},
			{name: "no such catalog", args: []string{"diff", "orphan", "-n", ns}, fragments: []string{`CatalogSource "gone" not found (there: ferry-samples)`}},
			{name: "no such subscription", args: []string{"diff", "nope", "-n", ns}, fragments: []string{`Subscription "nope" not found in namespace "diff"`}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { wantError(t, tc.args, tc.fragments...) })
		}
	})

	t.Run("an object that is not the Subscription's", func(t *testing.T) {
		other := namespace(t, "diff-conflict")
		taken := lighthouse(other)
		taken.Status.FailedUpgrade = nil
		installVersion(t, addr, taken, "1.3.0")
		create(t, taken)
		cm := &unstructured.Unstructured{}
		cm.SetAPIVersion("v1")
		cm.SetKind("ConfigMap")
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: other, Name: "lighthouse-operator-config"}, cm); err != nil {
			t.Fatal(err)
		}
		cm.SetLabels(nil)
		cm.SetAnnotations(nil)
		cm.SetManagedFields(nil)
		if err := env.Client.Update(ctx, cm, client.FieldOwner("someone")); err != nil {
			t.Fatal(err)
		}
		r := mustRun(t, "diff", "lighthouse-operator", "-n", other)
		if !strings.Contains(r.out, "! ConfigMap diff-conflict/lighthouse-operator-config (conflict: exists and was not installed by Ferry for diff-conflict/lighthouse-operator (OwnershipConflict)") {
			t.Errorf("the diff does not report the conflict:\n%s", r.out)
		}
	})
}
