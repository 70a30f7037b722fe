package crdsafety_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/ferrydev/ferry/internal/crdsafety"
	"github.com/ferrydev/ferry/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.WithoutProjectCRDs()) }

func context1m(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// regroup moves a Beacon CRD to its own API group so that every test has
// its own CRD on the shared API server.
func regroup(crd *apiextensionsv1.CustomResourceDefinition, group string) *apiextensionsv1.CustomResourceDefinition {
	crd = crd.DeepCopy()
	crd.Spec.Group = group
	crd.Name = crd.Spec.Names.Plural + "." + group
	return crd
}

// install creates crd, waits until it is established and returns it as
// the API server shows it (with status.storedVersions).
func install(t *testing.T, crd *apiextensionsv1.CustomResourceDefinition) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	ctx := context1m(t)
	if err := env.Client.Create(ctx, crd.DeepCopy()); err != nil {
		t.Fatalf("creating CRD %s: %v", crd.Name, err)
	}
	return established(t, crd.Name)
}

func established(t *testing.T, name string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	got := &apiextensionsv1.CustomResourceDefinition{}
	err := wait.PollUntilContextTimeout(context1m(t), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, got); err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return len(got.Status.StoredVersions) > 0, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("CRD %s not established: %v", name, err)
	}
	return got
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	err := env.Client.Create(context1m(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// createBeacon creates a Beacon through version, retrying while the API
// server's discovery catches up with a new CRD.
func createBeacon(t *testing.T, crd *apiextensionsv1.CustomResourceDefinition, version, key string, spec map[string]any) {
	t.Helper()
	ns, name, _ := strings.Cut(key, "/")
	ensureNamespace(t, ns)
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(crd.Spec.Group + "/" + version)
	u.SetKind(crd.Spec.Names.Kind)
	u.SetNamespace(ns)
	u.SetName(name)
	var last error
	err := wait.PollUntilContextTimeout(context1m(t), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		last = env.Client.Create(ctx, u.DeepCopy())
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("creating Beacon %s: %v (%v)", key, err, last)
	}
}

// installerClient reads as the installer does in a cluster: as its
// ServiceAccount, whose generated ClusterRole grants list on every resource
// for exactly this check (and nothing but list on custom resources).
func installerClient(t *testing.T) client.WithWatch {
	t.Helper()
	c, err := client.NewWithWatch(env.InstallerConfig(t), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// countingClient counts the list requests made through installerClient.
func countingClient(t *testing.T, lists *atomic.Int32) client.Client {
	t.Helper()
	c := installerClient(t)
	return interceptor.NewClient(c, interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			lists.Add(1)
			return c.List(ctx, list, opts...)
		},
	})
}

func objectFindings(r crdsafety.Result) []crdsafety.Finding {
	var out []crdsafety.Finding
	for _, f := range r.Findings {
		if f.Object != "" {
			out = append(out, f)
		}
	}
	return out
}

func describe(r crdsafety.Result) string {
	return fmt.Sprintf("blocked=%v objects=%d\n%s", r.Blocked, r.ObjectsChecked, strings.Join(messages(r.Findings), "\n"))
}

// beacons creates five Beacons in three namespaces through v1; coast/north
// shines the Strobe pattern and has no region.
func beacons(t *testing.T, crd *apiextensionsv1.CustomResourceDefinition) {
	for _, b := range []struct {
		key     string
		pattern string
	}{
		{"default/east", "Steady"},
		{"harbor/west", "Pulse"},
		{"harbor/south", "Steady"},
		{"coast/north", "Strobe"},
		{"coast/pier", "Pulse"},
	} {
		spec := map[string]any{"target": "svc-" + b.key[strings.Index(b.key, "/")+1:], "pattern": b.pattern}
		if b.pattern != "Strobe" {
			spec["region"] = "eu-west"
		}
		createBeacon(t, crd, "v1", b.key, spec)
	}
}

func TestCheckBlocksWhenAnExistingBeaconWouldBeInvalid(t *testing.T) {
	live := install(t, regroup(beaconCRD(t, "1.3.0"), "enum.lighthouse.ferry.dev"))
	beacons(t, live)

	narrowed := live.DeepCopy()
	edit(t, narrowed, "v1", func(s *apiextensionsv1.JSONSchemaProps) { s.Enum = enumOf("Steady", "Pulse") }, "spec", "pattern")

	required := live.DeepCopy()
	edit(t, required, "v1", func(s *apiextensionsv1.JSONSchemaProps) { s.Required = append(s.Required, "region") }, "spec")

	ruled := live.DeepCopy()
	edit(t, ruled, "v1", func(s *apiextensionsv1.JSONSchemaProps) {
		s.XValidations = apiextensionsv1.ValidationRules{{
			Rule:    "!has(self.pattern) || self.pattern != 'Strobe' || has(self.region)",
			Message: "a strobing beacon needs a region",
		}}
	}, "spec")

	cases := []struct {
		name        string
		new         *apiextensionsv1.CustomResourceDefinition
		policy      crdsafety.Policy
		wantBlocked bool
		wantObject  []string // messages of the object findings
		wantStatic  int
	}{
		{"narrowed enum, Strict", narrowed, crdsafety.PolicyStrict, true, []string{
			`CRD beacons.enum.lighthouse.ferry.dev: Beacon coast/north (stored as v1) is invalid under the new schema: spec.pattern: Unsupported value: "Strobe": supported values: "Steady", "Pulse"`,
		}, 1},
		{"narrowed enum, default policy is Strict", narrowed, "", true, []string{
			`CRD beacons.enum.lighthouse.ferry.dev: Beacon coast/north (stored as v1) is invalid under the new schema: spec.pattern: Unsupported value: "Strobe": supported values: "Steady", "Pulse"`,
		}, 1},
		{"narrowed enum, Warn", narrowed, crdsafety.PolicyWarn, false, []string{
			`CRD beacons.enum.lighthouse.ferry.dev: Beacon coast/north (stored as v1) is invalid under the new schema: spec.pattern: Unsupported value: "Strobe": supported values: "Steady", "Pulse"`,
		}, 1},
		{"new required field, Strict", required, crdsafety.PolicyStrict, true, []string{
			`CRD beacons.enum.lighthouse.ferry.dev: Beacon coast/north (stored as v1) is invalid under the new schema: spec.region: Required value`,
		}, 1},
		{"new CEL rule, Strict", ruled, crdsafety.PolicyStrict, true, []string{
			`CRD beacons.enum.lighthouse.ferry.dev: Beacon coast/north (stored as v1) is invalid under the new schema: spec: Invalid value: a strobing beacon needs a region`,
		}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var lists atomic.Int32
			c := &crdsafety.Checker{Client: countingClient(t, &lists), PageSize: 2}
			res, err := c.Check(context1m(t), live, tc.new, tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			if res.Blocked != tc.wantBlocked {
				t.Errorf("Blocked = %v, want %v\n%s", res.Blocked, tc.wantBlocked, describe(res))
			}
			objs := objectFindings(res)
			if got := messages(objs); !slices.Equal(got, tc.wantObject) {
				t.Errorf("object findings:\n got %q\nwant %q", got, tc.wantObject)
			}
			for _, f := range objs {
				if f.Object != "coast/north" || f.Version != "v1" || f.Kind != crdsafety.KindInvalidObject || !f.Blocking() {
					t.Errorf("finding %+v: want object coast/north, version v1, blocking", f)
				}
			}
			if static := len(res.Findings) - len(objs); static != tc.wantStatic {
				t.Errorf("%d static findings, want %d\n%s", static, tc.wantStatic, describe(res))
			}
			if res.ObjectsChecked != 5 {
				t.Errorf("ObjectsChecked = %d, want 5", res.ObjectsChecked)
			}
			if n := lists.Load(); n != 3 {
				t.Errorf("%d list requests for 5 Beacons in pages of 2, want 3", n)
			}
		})
	}

	t.Run("the invalid field is named", func(t *testing.T) {
		res, err := (&crdsafety.Checker{Client: installerClient(t), PageSize: 2}).Check(context1m(t), live, required, crdsafety.PolicyStrict)
		if err != nil {
			t.Fatal(err)
		}
		objs := objectFindings(res)
		if len(objs) != 1 || objs[0].Field != "spec.region" || objs[0].CRD != "beacons.enum.lighthouse.ferry.dev" {
			t.Fatalf("object findings %+v, want one for spec.region", objs)
		}
	})

	t.Run("None checks nothing", func(t *testing.T) {
		var lists atomic.Int32
		res, err := (&crdsafety.Checker{Client: countingClient(t, &lists)}).Check(context1m(t), live, narrowed, crdsafety.PolicyNone)
		if err != nil {
			t.Fatal(err)
		}
		if res.Blocked || len(res.Findings) != 0 || lists.Load() != 0 {
			t.Fatalf("None: %s; %d list requests", describe(res), lists.Load())
		}
	})
}

func TestCheckBlocksRemovingAStoredVersion(t *testing.T) {
	live := install(t, regroup(beaconCRD(t, "1.3.0"), "stored.lighthouse.ferry.dev"))
	createBeacon(t, live, "v1", "default/lamp", map[string]any{"target": "svc"})
	if !slices.Equal(live.Status.StoredVersions, []string{"v1"}) {
		t.Fatalf("storedVersions = %v, want [v1]", live.Status.StoredVersions)
	}

	new := live.DeepCopy()
	removeVersion(new, "v1")
	new.Spec.Versions[0].Storage = true

	res, err := (&crdsafety.Checker{Client: installerClient(t)}).Check(context1m(t), live, new, crdsafety.PolicyStrict)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Blocked || len(res.Findings) != 1 {
		t.Fatalf("want blocked by one finding, got %s", describe(res))
	}
	f := res.Findings[0]
	want := "CRD beacons.stored.lighthouse.ferry.dev: version v1 is listed in status.storedVersions but is missing from the new spec.versions; objects stored as v1 could no longer be read"
	if f.Kind != crdsafety.KindStoredVersionRemoved || f.Version != "v1" || f.Message != want {
		t.Fatalf("finding %+v, want %q", f, want)
	}

	res, err = (&crdsafety.Checker{Client: installerClient(t)}).Check(context1m(t), live, new, crdsafety.PolicyWarn)
	if err != nil || res.Blocked || len(res.Findings) != 1 {
		t.Fatalf("Warn: %v %s", err, describe(res))
	}
}

func TestCheckAcceptsSafeUpgrades(t *testing.T) {
	const group = "safe.lighthouse.ferry.dev"
	live := install(t, regroup(beaconCRD(t, "1.1.1"), group))
	for _, key := range []string{"default/a", "harbor/b", "coast/c"} {
		createBeacon(t, live, "v1beta1", key, map[string]any{"target": "svc", "intervalSeconds": int64(60)})
	}
	c := &crdsafety.Checker{Client: installerClient(t), PageSize: 2}

	// 1.1.1 -> 1.3.0 adds v1 (with a new optional field) and keeps v1beta1.
	next := regroup(beaconCRD(t, "1.3.0"), group)
	res, err := c.Check(context1m(t), live, next, crdsafety.PolicyStrict)
	if err != nil {
		t.Fatal(err)
	}
	if res.Blocked || len(res.Findings) != 0 || res.ObjectsChecked != 3 {
		t.Fatalf("1.1.1 -> 1.3.0: %s", describe(res))
	}

	// Apply it, then an additive change on top: a new optional field, a
	// widened enum, a looser bound and a new description.
	next.ResourceVersion = live.ResourceVersion
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := &apiextensionsv1.CustomResourceDefinition{}
		if err := env.Client.Get(context1m(t), client.ObjectKey{Name: next.Name}, cur); err != nil {
			return err
		}
		cur.Spec = next.Spec
		return env.Client.Update(context1m(t), cur)
	}); err != nil {
		t.Fatal(err)
	}
	live = established(t, next.Name)
	createBeacon(t, live, "v1", "coast/d", map[string]any{"target": "svc", "pattern": "Strobe"})

	after := live.DeepCopy()
	edit(t, after, "v1", func(s *apiextensionsv1.JSONSchemaProps) {
		s.Properties["color"] = apiextensionsv1.JSONSchemaProps{Type: "string", Enum: enumOf("white", "red")}
		p := s.Properties["pattern"]
		p.Enum = append(p.Enum, enumOf("Flash")...)
		s.Properties["pattern"] = p
		i := s.Properties["intervalSeconds"]
		i.Maximum = ptr.To(86400.0)
		i.Description = "Seconds between two announcements, at most a day."
		s.Properties["intervalSeconds"] = i
	}, "spec")
	res, err = c.Check(context1m(t), live, after, crdsafety.PolicyStrict)
	if err != nil {
		t.Fatal(err)
	}
	if res.Blocked || len(res.Findings) != 0 || res.ObjectsChecked != 4 {
		t.Fatalf("additive change: %s", describe(res))
	}

	// A CRD that is not installed yet has nothing to check.
	res, err = c.Check(context1m(t), nil, after, crdsafety.PolicyStrict)
	if err != nil || res.Blocked || len(res.Findings) != 0 {
		t.Fatalf("not installed: %v %s", err, describe(res))
	}
}

// TestCheckDoesNotBlockOnObjectsThatWereAlreadyInvalid: the live CRD was
// tightened earlier while a Beacon used the value it now rejects; a new CRD
// that keeps the constraint does not make that Beacon worse.
func TestCheckDoesNotBlockOnObjectsThatWereAlreadyInvalid(t *testing.T) {
	live := install(t, regroup(beaconCRD(t, "1.3.0"), "ratchet.lighthouse.ferry.dev"))
	createBeacon(t, live, "v1", "coast/north", map[string]any{"target": "svc", "pattern": "Strobe"})
	createBeacon(t, live, "v1", "coast/south", map[string]any{"target": "svc", "pattern": "Steady"})

	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := &apiextensionsv1.CustomResourceDefinition{}
		if err := env.Client.Get(context1m(t), client.ObjectKey{Name: live.Name}, cur); err != nil {
			return err
		}
		edit(t, cur, "v1", func(s *apiextensionsv1.JSONSchemaProps) { s.Enum = enumOf("Steady", "Pulse") }, "spec", "pattern")
		return env.Client.Update(context1m(t), cur)
	}); err != nil {
		t.Fatal(err)
	}
	live = established(t, live.Name)

	new := live.DeepCopy()
	edit(t, new, "v1", func(s *apiextensionsv1.JSONSchemaProps) {
		s.Properties["color"] = apiextensionsv1.JSONSchemaProps{Type: "string"}
	}, "spec")
	res, err := (&crdsafety.Checker{Client: installerClient(t)}).Check(context1m(t), live, new, crdsafety.PolicyStrict)
	if err != nil {
		t.Fatal(err)
	}
	if res.Blocked || len(res.Findings) != 1 {
		t.Fatalf("want one non-blocking finding, got %s", describe(res))
	}
	f := res.Findings[0]
	want := `CRD beacons.ratchet.lighthouse.ferry.dev: Beacon coast/north (stored as v1) is invalid under the new schema, as it already was under the old one: spec.pattern: Unsupported value: "Strobe": supported values: "Steady", "Pulse"`
	if f.Kind != crdsafety.KindAlreadyInvalidObject || f.Blocking() || f.Object != "coast/north" || f.Field != "spec.pattern" || f.Message != want {
		t.Fatalf("finding %+v\nwant message %q", f, want)
	}

	// A new CRD that also makes the other Beacon invalid blocks on that one only.
	stricter := new.DeepCopy()
	edit(t, stricter, "v1", func(s *apiextensionsv1.JSONSchemaProps) { s.Enum = enumOf("Pulse") }, "spec", "pattern")
	res, err = (&crdsafety.Checker{Client: installerClient(t)}).Check(context1m(t), live, stricter, crdsafety.PolicyStrict)
	if err != nil {
		t.Fatal(err)
	}
	var blocking []string
	for _, f := range res.BlockingFindings() {
		blocking = append(blocking, f.Object+" "+f.Field)
	}
	if !res.Blocked || !slices.Equal(blocking, []string{" spec.pattern", "coast/south spec.pattern"}) {
		t.Fatalf("blocking findings %q, want the static enum change and coast/south\n%s", blocking, describe(res))
	}
}
