package resolver

import (
	"context"
	"strings"
	"testing"

	"github.com/blang/semver/v4"

	"github.com/ferrydev/ferry/internal/catalog"
)

func TestMinKubeVersion(t *testing.T) {
	// a 1.0.0 … 1.3.0 in one channel, each replacing the one before.
	docs := simplePkg("a", "stable", "1.0.0", "1.1.0", "1.2.0", "1.3.0")
	cluster := semver.MustParse("1.29.0")
	for _, tc := range []struct {
		name string
		// min is each bundle's minimum Kubernetes version as its CSV says;
		// a bundle that is not listed has none known.
		min       map[string]string
		kube      *semver.Version
		installed string
		want      string // describe of the decision
	}{
		{
			name: "the newest fits",
			min:  map[string]string{"a.v1.3.0": "1.29.0", "a.v1.2.0": "1.25"},
			kube: &cluster,
			want: "Install a.v1.3.0 1.3.0 from community/stable by install\n" +
				"rejected a.v1.2.0: NotPreferred: a 1.3.0 was chosen over it\n" +
				"rejected a.v1.1.0: NotPreferred: a 1.3.0 was chosen over it\n" +
				"rejected a.v1.0.0: NotPreferred: a 1.3.0 was chosen over it\n",
		},
		{
			name: "newer versions need a newer Kubernetes: an older one that fits is chosen",
			min:  map[string]string{"a.v1.3.0": "1.31.0", "a.v1.2.0": "v1.30", "a.v1.1.0": "1.29.0-0"},
			kube: &cluster,
			want: "Install a.v1.1.0 1.1.0 from community/stable by install\n" +
				"rejected a.v1.3.0: KubeVersionTooOld: requires Kubernetes ≥ 1.31.0 (spec.minKubeVersion), the cluster is 1.29.0\n" +
				"rejected a.v1.2.0: KubeVersionTooOld: requires Kubernetes ≥ v1.30 (spec.minKubeVersion), the cluster is 1.29.0\n" +
				"rejected a.v1.0.0: NotPreferred: a 1.1.0 was chosen over it\n",
		},
		{
			name: "a minimum that is not a version passes over only its bundle",
			min:  map[string]string{"a.v1.3.0": "1.x", "a.v1.2.0": " "},
			kube: &cluster,
			want: "Install a.v1.2.0 1.2.0 from community/stable by install\n" +
				"rejected a.v1.3.0: InvalidMinKubeVersion: ClusterServiceVersion a.v1.3.0: spec.minKubeVersion \"1.x\" is not a version: Invalid character(s) found in minor number \"x\"\n" +
				"rejected a.v1.1.0: NotPreferred: a 1.2.0 was chosen over it\n" +
				"rejected a.v1.0.0: NotPreferred: a 1.2.0 was chosen over it\n",
		},
		{
			name: "nothing fits: the subscription says why",
			min:  map[string]string{"a.v1.3.0": "1.33.0", "a.v1.2.0": "1.32.0", "a.v1.1.0": "1.31.0", "a.v1.0.0": "1.30.0"},
			kube: &cluster,
			want: "Unsatisfiable\n" +
				"rejected a.v1.3.0: KubeVersionTooOld: requires Kubernetes ≥ 1.33.0 (spec.minKubeVersion), the cluster is 1.29.0\n" +
				"rejected a.v1.2.0: KubeVersionTooOld: requires Kubernetes ≥ 1.32.0 (spec.minKubeVersion), the cluster is 1.29.0\n" +
				"rejected a.v1.1.0: KubeVersionTooOld: requires Kubernetes ≥ 1.31.0 (spec.minKubeVersion), the cluster is 1.29.0\n" +
				"rejected a.v1.0.0: KubeVersionTooOld: requires Kubernetes ≥ 1.30.0 (spec.minKubeVersion), the cluster is 1.29.0\n" +
				"KubeVersionUnsatisfiable: no version of a in channel \"stable\" of catalog \"community\" fits the cluster's Kubernetes 1.29.0: " +
				"1.3.0 requires Kubernetes ≥ 1.33.0 (spec.minKubeVersion), the cluster is 1.29.0; " +
				"1.2.0 requires Kubernetes ≥ 1.32.0 (spec.minKubeVersion), the cluster is 1.29.0; " +
				"1.1.0 requires Kubernetes ≥ 1.31.0 (spec.minKubeVersion), the cluster is 1.29.0; " +
				"1.0.0 requires Kubernetes ≥ 1.30.0 (spec.minKubeVersion), the cluster is 1.29.0\n",
		},
		{
			name:      "the installed version stays, whatever it requires; the upgrade that does not fit is passed over",
			min:       map[string]string{"a.v1.3.0": "1.30.0", "a.v1.2.0": "1.30.0"},
			kube:      &cluster,
			installed: "1.2.0",
			want: "UpToDate a.v1.2.0 1.2.0 from community/stable by none from a.v1.2.0\n" +
				"rejected a.v1.3.0: KubeVersionTooOld: requires Kubernetes ≥ 1.30.0 (spec.minKubeVersion), the cluster is 1.29.0\n" +
				"rejected a.v1.1.0: Downgrade: lower than the installed version 1.2.0\n" +
				"rejected a.v1.0.0: Downgrade: lower than the installed version 1.2.0\n",
		},
		{
			name: "without the cluster's version nothing is checked",
			min:  map[string]string{"a.v1.3.0": "1.99.0"},
			want: "Install a.v1.3.0 1.3.0 from community/stable by install\n" +
				"rejected a.v1.2.0: NotPreferred: a 1.3.0 was chosen over it\n" +
				"rejected a.v1.1.0: NotPreferred: a 1.3.0 was chosen over it\n" +
				"rejected a.v1.0.0: NotPreferred: a 1.3.0 was chosen over it\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := Request{
				Catalogs:      []Snapshot{snapshot(t, "community", 0, docs...)},
				Subscriptions: []Subscription{sub("ns", "a", "a")},
				KubeVersion:   tc.kube,
				MinKubeVersion: func(cat string, b *catalog.Bundle) (string, bool) {
					if cat != "community" {
						t.Errorf("asked for catalog %q", cat)
					}
					v, ok := tc.min[b.Name]
					return v, ok
				},
			}
			if tc.installed != "" {
				req.Installed = []Installed{installed("ns", "a", tc.installed, "community")}
			}
			res, err := Resolve(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(res.Decisions[0]); got != tc.want {
				t.Errorf("decision:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestMinKubeVersionExplanationIsBounded(t *testing.T) {
	versions := []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0", "1.6.0", "1.7.0"}
	kube := semver.MustParse("1.20.0")
	res, err := Resolve(context.Background(), Request{
		Catalogs:       []Snapshot{snapshot(t, "community", 0, simplePkg("a", "stable", versions...)...)},
		Subscriptions:  []Subscription{sub("ns", "a", "a")},
		KubeVersion:    &kube,
		MinKubeVersion: func(string, *catalog.Bundle) (string, bool) { return "1.33.0", true },
	})
	if err != nil {
		t.Fatal(err)
	}
	e := res.Decisions[0].Explanation
	if e == nil || e.Code != CodeKubeVersion {
		t.Fatalf("explanation %+v; want code %s", e, CodeKubeVersion)
	}
	if strings.Count(e.Message, "requires Kubernetes") != MaxKubeVersionFacts || !strings.HasSuffix(e.Message, "; 3 more") {
		t.Errorf("explanation names %d bundles, want %d and the count of the rest: %s", strings.Count(e.Message, "requires Kubernetes"), MaxKubeVersionFacts, e.Message)
	}
}

func TestClusterKubeVersion(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "v1.29.4", want: "1.29.4"},
		{in: "v1.29.4-eks-036c24b", want: "1.29.4"},
		{in: "v1.30.1+k3s1", want: "1.30.1"},
		{in: "v1.33.13", want: "1.33.13"},
		{in: "v0.0.0-master+$Format:%H$", want: "0.0.0"},
		{in: "", err: `the cluster's Kubernetes version "" is not a version`},
		{in: "one.two", err: `the cluster's Kubernetes version "one.two" is not a version`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ClusterKubeVersion(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ClusterKubeVersion(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("ClusterKubeVersion(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
			}
		})
	}
}
